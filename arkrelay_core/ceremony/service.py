"""Service requests (31500) and their responses (31501), PROTOCOL.md §5."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

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
from .batches import open_batch, prepare_batch_soon
from .ledger import colour_rows
from .records import Transition

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["ServiceDesk", "fee_table", "wallet_state"]


class ServiceDesk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def handle(self, event: Event, *, recovered: bool = False) -> None:
        engine = self.engine
        try:
            text, scheme = engine.decrypt(event)
        except ProtocolViolation as exc:
            scheme = str(detect_scheme(event.content))
            await engine.refuse(event, exc.code, str(exc), scheme=scheme)
            return
        try:
            request = decode_service_request(text)
        except ProtocolViolation as exc:
            await engine.refuse(
                event, exc.code, str(exc), ref_id=peek_id(text, "request_id"), scheme=scheme
            )
            return
        if recovered and await engine.store.run(_acted_on, event, request):
            return  # it left a batch or an invoice before the restart: answered already
        if engine.rate_limited(event.pubkey, time.time()):
            await engine.refuse(
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
            await engine.refuse(event, exc.code, str(exc), ref_id=request.request_id, scheme=scheme)
            return
        reply = engine.messages.response(
            response,
            author=event.pubkey,
            request_id=event.id,
            scheme=scheme,
            expires_at=int(time.time()) + 600,
        )
        await engine.store.run(enqueue, reply)
        engine.transitioned(transitions)
        if isinstance(request, SubmitBatch):
            await prepare_batch_soon(engine, request.batch_id)

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
            asset_id = self.engine.assets.resolve(request.asset_id)
            invoice = await self.engine.flows.lift.open_lift(
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
                ticker=self.engine.assets.ticker(asset_id),
            ), []
        assert isinstance(request, SubmitBatch)
        return await open_batch(self.engine, event, request, base)

    async def _info(self, base: dict[str, Any]) -> InfoResponse:
        engine = self.engine
        fees = fee_table(engine)
        ark = None
        if engine.ark is not None:
            server = await engine.ark.get_info()
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
            network=engine.network,
            service_pubkey=engine.identity.pubkey,
            fees=fees,
            assets=[a.info() for a in engine.assets.enabled()],
            plugins=engine.plugin_versions,
            ark=ark,
        )

    async def _sync(
        self, author: str, request: SyncState, base: dict[str, Any]
    ) -> SyncStateResponse:
        entries, balances = await wallet_state(self.engine, author, request.asset_id)
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

        row = await self.engine.store.run(run)
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


def fee_table(engine: Engine) -> dict[str, Any]:
    """The fees as wallets see them (get_info, /info): the schedule, and lifts are free."""
    fees = msgspec.to_builtins(engine.settings.fees)
    fees["lift"] = 0
    return fees


async def wallet_state(
    engine: Engine, owner: str, asset: str | None = None
) -> tuple[list[VtxoEntry], dict[str, int]]:
    """``owner``'s VTXOs as the Ark backend lists them, coloured by the gateway's ledger
    (optionally one asset, by id or ticker), and the spendable balance per asset id."""
    wanted = engine.assets.resolve(asset) if asset else None
    if engine.ark is None:
        raise ProtocolViolation("no Ark backend", code=ErrorCode.ARK_UNAVAILABLE)
    vtxos = await engine.ark.list_vtxos(owner, spendable_only=False)
    colours = await engine.store.run(colour_rows, [v.vtxo_id for v in vtxos])
    entries: list[VtxoEntry] = []
    balances: dict[str, int] = {}
    for v in vtxos:
        coloured = engine.flows.ark.colour(v, colours)
        if wanted is not None and coloured.asset_id != wanted:
            continue
        entries.append(
            VtxoEntry(
                v.vtxo_id,
                coloured.asset_id,
                coloured.amount,
                v.status,
                v.expires_at,
                engine.assets.ticker(coloured.asset_id),
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
