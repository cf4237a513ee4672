"""Service requests (31500) and their responses (31501), PROTOCOL.md §5."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError, ProtocolViolation
from ..nostr import Event
from ..nostr.dm import detect_scheme
from ..outbox import enqueue
from ..protocol import (
    ArkServerInfo,
    ErrorBody,
    GetInfo,
    GetStatus,
    InfoResponse,
    LiftLightning,
    LiftPending,
    StatusResponse,
    SubmitBatch,
    SyncState,
    SyncStateResponse,
    VtxoEntry,
    decode_service_request,
)
from ..protocol.intents import peek_id
from ..store.models import Batch, CeremonySession, Invoice
from ..store.models import Intent as IntentRow
from .ark import ArkSteps
from .batches import open_batch, prepare_batch_soon
from .ledger import colour_rows
from .lift import LiftFlows
from .ports import Driver, HasPorts, Ports, ports_of
from .records import Transition

__all__ = ["ServiceDesk", "fee_table", "wallet_state"]


class ServiceDesk:
    def __init__(
        self,
        ports: Ports,
        driver: Driver,
        lift: LiftFlows,
        plugin_versions: dict[str, str],
    ) -> None:
        self.ports = ports
        self.driver = driver
        self.lift = lift
        self.plugin_versions = plugin_versions

    async def handle(self, event: Event, *, recovered: bool = False) -> None:
        ports = self.ports
        peers = ports.peers
        try:
            text, scheme = peers.decrypt(event)
        except ProtocolViolation as exc:
            scheme = str(detect_scheme(event.content))
            await peers.refuse(event, exc.code, str(exc), scheme=scheme)
            return
        try:
            request = decode_service_request(text)
        except ProtocolViolation as exc:
            await peers.refuse(
                event, exc.code, str(exc), ref_id=peek_id(text, "request_id"), scheme=scheme
            )
            return
        if recovered and await ports.run(_acted_on, event, request):
            return  # it left a batch or an invoice before the restart: answered already
        if peers.rate_limited(event.pubkey, time.time()):
            await peers.refuse(
                event,
                ErrorCode.RATE_LIMITED,
                "too many requests",
                ref_id=request.request_id,
                scheme=scheme,
            )
            return
        try:
            response, transitions = await self._answer(event, request, scheme)
        except ArkRelayError as exc:
            await peers.refuse(event, exc.code, str(exc), ref_id=request.request_id, scheme=scheme)
            return
        reply = ports.messages.response(
            response,
            author=event.pubkey,
            request_id=event.id,
            scheme=scheme,
            expires_at=int(time.time()) + 600,
        )
        await ports.run(enqueue, reply)
        ports.transitioned(transitions)
        if isinstance(request, SubmitBatch):
            await prepare_batch_soon(ports, self.driver, request.batch_id)

    async def _answer(
        self, event: Event, request: Any, scheme: str
    ) -> tuple[msgspec.Struct, list[Transition]]:
        base = {"request_id": request.request_id}
        if isinstance(request, GetInfo):
            return await self._info(base), []
        if isinstance(request, SyncState):
            return await self._sync(event.pubkey, request, base), []
        if isinstance(request, GetStatus):
            return await self._status(event.pubkey, request, base), []
        if isinstance(request, LiftLightning):
            asset_id = self.ports.assets.resolve(request.asset_id)
            invoice = await self.lift.open_lift(
                event.pubkey, request.request_id, event.id, asset_id, request.amount, scheme
            )
            return LiftPending(
                **base,
                action="lift_lightning",
                status="pending",
                invoice=invoice.bolt11,
                payment_hash=invoice.payment_hash,
                expires_at=invoice.expires_at,
                asset_id=asset_id,
                amount=request.amount,
                ticker=self.ports.assets.ticker(asset_id),
            ), []
        assert isinstance(request, SubmitBatch)
        return await open_batch(self.ports, event, request, base)

    async def _info(self, base: dict[str, Any]) -> InfoResponse:
        ports = self.ports
        fees = fee_table(ports)
        ark = None
        if ports.ark is not None:
            server = await ports.ark.get_info()
            ark = ArkServerInfo(
                server.signer_pubkey,
                server.unilateral_exit_delay,
                server.dust,
                server_url=server.server_url,
            )
        return InfoResponse(
            **base,
            action="get_info",
            status="ok",
            network=ports.network,
            service_pubkey=ports.identity.pubkey,
            fees=fees,
            assets=[a.info() for a in ports.assets.enabled()],
            plugins=self.plugin_versions,
            ark=ark,
        )

    async def _sync(
        self, author: str, request: SyncState, base: dict[str, Any]
    ) -> SyncStateResponse:
        entries, balances = await wallet_state(self.ports, author, request.asset_id)
        return SyncStateResponse(
            **base, action="sync_state", status="ok", vtxos=entries, balances=balances
        )

    async def _status(
        self, author: str, request: GetStatus, base: dict[str, Any]
    ) -> StatusResponse:
        def run(db: Session) -> CeremonySession | None:
            query = sa.select(CeremonySession)
            if request.session_id is not None:
                query = query.where(CeremonySession.id == request.session_id)
            else:
                query = query.join(IntentRow).where(IntentRow.action_id == request.action_id)
            return db.scalar(query.where(CeremonySession.author == author))

        row = await self.ports.run(run)
        if row is None:
            raise ProtocolViolation("no such session of this key")
        error = None
        if row.error_code is not None:
            code = ErrorCode(row.error_code)
            error = ErrorBody(int(code), row.error_message or code.message, code.retryable)
        return StatusResponse(
            **base,
            action="get_status",
            status="ok",
            session_id=row.id,
            state=row.state,
            step_index=row.step_index,
            step_total=row.step_total,
            action_id=row.context.get("action_id"),
            error=error,
        )


def fee_table(source: Ports | HasPorts) -> dict[str, Any]:
    """The fees as wallets see them (get_info, /info): the schedule, and lifts are free."""
    fees = msgspec.to_builtins(ports_of(source).settings.fees)
    fees["lift"] = 0
    return fees


async def wallet_state(
    source: Ports | HasPorts, owner: str, asset: str | None = None
) -> tuple[list[VtxoEntry], dict[str, int]]:
    """``owner``'s VTXOs as the Ark backend lists them, coloured by the gateway's ledger
    (optionally one asset, by id or ticker), and the spendable balance per asset id."""
    ports = ports_of(source)
    wanted = ports.assets.resolve(asset) if asset else None
    if ports.ark is None:
        raise ProtocolViolation("no Ark backend", code=ErrorCode.ARK_UNAVAILABLE)
    vtxos = await ports.ark.list_vtxos(owner, spendable_only=False)
    colours = await ports.run(colour_rows, [v.vtxo_id for v in vtxos])
    ark = ArkSteps(ports)
    entries: list[VtxoEntry] = []
    balances: dict[str, int] = {}
    for v in vtxos:
        coloured = ark.colour(v, colours)
        if wanted is not None and coloured.asset_id != wanted:
            continue
        entries.append(
            VtxoEntry(
                v.vtxo_id,
                coloured.asset_id,
                coloured.amount,
                v.status,
                v.expires_at,
                ports.assets.ticker(coloured.asset_id),
            )
        )
        if v.status == "spendable":
            balances[coloured.asset_id] = balances.get(coloured.asset_id, 0) + coloured.amount
    return entries, balances


def _acted_on(db: Session, event: Event, request: Any) -> bool:
    """Whether a request that creates something (a batch, a lift invoice) already did."""
    if isinstance(request, SubmitBatch):
        found = sa.select(Batch.id).where(Batch.request_event_id == event.id)
    elif isinstance(request, LiftLightning):
        found = sa.select(Invoice.payment_hash).where(
            Invoice.direction == "in",
            Invoice.owner == event.pubkey,
            Invoice.ref_id == request.request_id,
        )
    else:
        return False  # reading requests are simply answered again
    return db.scalar(found) is not None
