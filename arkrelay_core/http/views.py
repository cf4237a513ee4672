"""The read-only API. Nostr is the API for every change of state; HTTP is for reading."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Any

import msgspec
import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session

from ..ceremony.service import fee_table, wallet_state
from ..errors import ArkRelayError, UnknownAsset
from ..interfaces import Listener, RelayReader
from ..nostr import encode_npub
from ..nostr.errors import Nip19Error
from ..nostr.nip19 import decode_pubkey
from ..settlement.merkle import build_proof
from ..store.models import Asset as AssetRow
from ..store.models import CeremonySession, Intent, Invoice, Settlement, SettlementLeaf
from .app import json_response
from .context import ApiContext
from .errors import HttpError, bad_request, not_found
from .models import (
    AssetOut,
    BalanceOut,
    Balances,
    Check,
    Health,
    InfoOut,
    IntentOut,
    InvoiceStatus,
    ProofStepOut,
    Readiness,
    SessionOut,
    SettlementHistoryEntry,
    SettlementOut,
    SettlementPage,
    SettlementProof,
    VtxoOut,
    VtxoPage,
)
from .routes import Api, Param

__all__ = ["api", "next_cursor", "page_params", "pubkey_of", "session_out"]

log = logging.getLogger(__name__)

api = Api()

HEX64 = "^[0-9a-f]{64}$"
_TXID = re.compile("[0-9a-f]{64}")
#: The canonical forms ``pubkey_of`` reads (it also takes upper case and ``nostr:``).
PUBKEY_PATTERN = "^([0-9a-f]{64}|npub1[02-9ac-hj-np-z]{58})$"
PUBKEY = Param(
    "pubkey",
    "x-only public key: 64 hex characters, or an npub",
    pattern=PUBKEY_PATTERN,
    example="npub10xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqpkge6d",
)
LIMIT = Param(
    "limit",
    "items per page (1 to the configured page size)",
    where="query",
    required=False,
    pattern="^[1-9][0-9]*$",
)
CURSOR = Param("cursor", "the next_cursor of the previous page", where="query", required=False)


def page_params(ctx: ApiContext, limit: str | None, cursor: str | None) -> tuple[int, str | None]:
    """``limit`` as an int within the configured page size, ``cursor`` decoded."""
    size = ctx.settings.page_size
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= size:
            raise bad_request(f"limit must be an integer from 1 to {size}")
        size = int(limit)
    after = None
    if cursor is not None:
        padded = cursor.encode() + b"=" * (-len(cursor) % 4)
        try:
            after = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            after = ""
        if not after:
            raise bad_request("cursor is not one this API gave out")
    return size, after


def next_cursor(last_key: str | None) -> str | None:
    if last_key is None:
        return None
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def pubkey_of(value: str) -> str:
    try:
        return decode_pubkey(value)
    except (Nip19Error, ValueError) as exc:
        raise bad_request(f"not a public key (hex or npub): {exc}") from None


# -- health and information ----------------------------------------------------------------


@api.get("/health", Health, summary="The process is up", tag="health")
async def health(ctx: ApiContext) -> Health:
    return Health("ok")


@api.get(
    "/ready",
    Readiness,
    summary="Database, transports and backends reachable, no breaker open (else 503)",
    tag="health",
    model_statuses=(503,),
)
async def ready(ctx: ApiContext) -> Any:
    gateway = ctx.gateway
    checks: dict[str, Check] = {}
    try:
        await ctx.db(lambda db: db.execute(sa.text("SELECT 1")))
        checks["database"] = Check(True, "reachable")
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        checks["database"] = Check(False, f"{type(exc).__name__}: {exc}")
    for name, component in gateway.components.all().items():
        checks[name] = _component_check(component.statistics())
    body = Readiness(all(c.ok for c in checks.values()), checks)
    return json_response(body, 200 if body.ready else 503)


def _component_check(stats: Any) -> Check:
    """A component is ready unless its breaker is open or it reports itself down."""
    breaker = stats.get("breaker") if isinstance(stats, dict) else None
    if isinstance(breaker, dict) and breaker.get("state") == "open":
        return Check(False, "circuit breaker open")
    if isinstance(stats, dict) and stats.get("connected") is False:
        return Check(False, "not connected")
    return Check(True, "ok")


@api.get("/info", InfoOut, summary="Who the gateway is and what it offers", tag="info")
async def info(ctx: ApiContext) -> InfoOut:
    gateway = ctx.gateway
    engine = gateway.engine
    transports = gateway.components.transports
    # Where wallets connect: the first transport that listens, in config order.
    endpoint = next((t for t in transports.values() if isinstance(t, Listener)), None)
    relays = [url for t in transports.values() if isinstance(t, RelayReader) for url in t.relays]
    return InfoOut(
        service_pubkey=gateway.identity.pubkey,
        npub=encode_npub(gateway.identity.pubkey),
        network=gateway.config.gateway.network,
        endpoint_url=endpoint.url if endpoint is not None else None,
        relays=relays,
        fees=fee_table(engine),
        assets=[_asset(a) for a in engine.assets.assets],
        plugins=dict(engine.plugin_versions),
    )


def _asset(a: Any) -> AssetOut:
    return AssetOut(a.asset_id, a.ticker, a.name, a.decimals, a.enabled, a.is_gateway_asset)


# -- sessions and intents -------------------------------------------------------------------


def session_out(row: CeremonySession) -> SessionOut:
    return SessionOut(
        session_id=row.id,
        intent_event_id=row.intent_event_id,
        author=row.author,
        type=row.type,
        state=row.state,
        step_index=row.step_index,
        step_total=row.step_total,
        batch_id=row.batch_id,
        error_code=row.error_code,
        error_message=row.error_message,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
    )


@api.get(
    "/sessions/{session_id}",
    SessionOut,
    summary="A signing session's state and step",
    tag="sessions",
    params=(
        Param(
            "session_id", "`sess_` and 24 hex characters", example="sess_0123456789abcdef01234567"
        ),
    ),
    errors=(404,),
)
async def session(ctx: ApiContext, session_id: str) -> SessionOut:
    row = await ctx.db(lambda db: db.get(CeremonySession, session_id))
    if row is None:
        raise not_found(f"no session {session_id}")
    return session_out(row)


@api.get(
    "/intents/{author}/{action_id}",
    IntentOut,
    summary="An intent by its author and action_id, with its session",
    tag="sessions",
    params=(
        Param("author", "the intent author's public key: hex or npub", pattern=PUBKEY_PATTERN),
        Param("action_id", "the intent's action_id"),
    ),
    errors=(400, 404),
)
async def intent(ctx: ApiContext, author: str, action_id: str) -> IntentOut:
    pubkey = pubkey_of(author)

    def find(db: Session) -> tuple[Intent, CeremonySession | None] | None:
        row = db.scalar(
            sa.select(Intent).where(Intent.author == pubkey, Intent.action_id == action_id)
        )
        if row is None:
            return None
        found = db.scalar(
            sa.select(CeremonySession).where(CeremonySession.intent_event_id == row.event_id)
        )
        return row, found

    found = await ctx.db(find)
    if found is None:
        raise not_found(f"no intent {action_id!r} of {pubkey}")
    row, sess = found
    return IntentOut(
        event_id=row.event_id,
        author=row.author,
        action_id=row.action_id,
        type=row.type,
        params=row.params,
        received_at=row.received_at,
        expires_at=row.expires_at,
        batch_id=row.batch_id,
        session_id=sess.id if sess else None,
        state=sess.state if sess else None,
    )


# -- money ----------------------------------------------------------------------------------


async def _wallet(ctx: ApiContext, pubkey: str) -> tuple[list[Any], dict[str, int]]:
    try:
        return await wallet_state(ctx.gateway.engine, pubkey)
    except ArkRelayError as exc:
        raise HttpError(503, str(exc), code=int(exc.code)) from None


@api.get(
    "/vtxos/{pubkey}",
    VtxoPage,
    summary="A key's VTXOs with their asset colours, ordered by id",
    tag="ledger",
    params=(PUBKEY, LIMIT, CURSOR),
    errors=(400, 503),
)
async def vtxos(ctx: ApiContext, pubkey: str, limit: str | None, cursor: str | None) -> VtxoPage:
    owner = pubkey_of(pubkey)
    size, after = page_params(ctx, limit, cursor)
    entries, _ = await _wallet(ctx, owner)
    ordered = sorted(entries, key=lambda e: e.vtxo_id)
    if after is not None:
        ordered = [e for e in ordered if e.vtxo_id > after]
    chunk = ordered[:size]
    more = len(ordered) > size
    return VtxoPage(
        items=[
            VtxoOut(e.vtxo_id, e.asset_id, e.ticker, e.amount, e.status, e.expires_at)
            for e in chunk
        ],
        next_cursor=next_cursor(chunk[-1].vtxo_id) if more else None,
    )


@api.get(
    "/balances/{pubkey}",
    Balances,
    summary="A key's spendable balance per asset",
    tag="ledger",
    params=(PUBKEY,),
    errors=(400, 503),
)
async def balances(ctx: ApiContext, pubkey: str) -> Balances:
    owner = pubkey_of(pubkey)
    _, found = await _wallet(ctx, owner)
    assets = ctx.gateway.engine.assets
    return Balances(
        owner,
        [BalanceOut(a, assets.ticker(a), n) for a, n in sorted(found.items())],
    )


@api.get("/assets", list[AssetOut], summary="Every asset the gateway lists", tag="ledger")
async def assets(ctx: ApiContext) -> list[AssetOut]:
    return [_asset(a) for a in ctx.gateway.engine.assets.assets]


@api.get(
    "/assets/{asset_id}",
    AssetOut,
    summary="One asset, by id or ticker",
    tag="ledger",
    params=(Param("asset_id", "64 hex characters, or a ticker such as gBTC"),),
    errors=(404,),
)
async def asset(ctx: ApiContext, asset_id: str) -> AssetOut:
    book = ctx.gateway.engine.assets
    try:
        found = book.get(book.resolve(asset_id))
    except UnknownAsset:
        row = await ctx.db(lambda db: db.get(AssetRow, asset_id.lower()))
        if row is None:
            raise not_found(f"no asset {asset_id!r}") from None
        return AssetOut(
            row.asset_id, row.ticker, row.name, row.decimals, row.enabled, row.is_gateway_asset
        )
    return _asset(found)


@api.get(
    "/lightning/invoices/{payment_hash}",
    InvoiceStatus,
    summary="A lift or land invoice's status (never its preimage or owner)",
    tag="lightning",
    params=(Param("payment_hash", "64 hex characters", pattern=HEX64),),
    errors=(404,),
)
async def invoice(ctx: ApiContext, payment_hash: str) -> InvoiceStatus:
    row = await ctx.db(lambda db: db.get(Invoice, payment_hash.lower()))
    if row is None:
        raise not_found(f"no invoice {payment_hash}")
    return InvoiceStatus(
        row.payment_hash,
        row.direction,
        row.state,
        row.amount_sat,
        row.asset_id,
        row.expires_at,
        row.updated_at,
    )


# -- settlements ----------------------------------------------------------------------------


def _settlement(row: Settlement) -> SettlementOut:
    last_error = (row.context or {}).get("last_error")
    return SettlementOut(
        settlement_id=row.id,
        strategy=row.strategy,
        state=row.state,
        period_start=row.period_start,
        period_end=row.period_end,
        merkle_root=row.merkle_root,
        l1_txid=row.l1_txid,
        block_height=row.block_height,
        l2_tx_count=row.l2_tx_count,
        confirmations=row.confirmations,
        history=msgspec.convert(row.history or [], list[SettlementHistoryEntry]),
        last_error=None if last_error is None else str(last_error),
    )


@api.get(
    "/settlements",
    SettlementPage,
    summary="L1 settlements, by id descending",
    tag="settlement",
    params=(LIMIT, CURSOR),
    errors=(400,),
)
async def settlements(ctx: ApiContext, limit: str | None, cursor: str | None) -> SettlementPage:
    size, after = page_params(ctx, limit, cursor)

    def page(db: Session) -> list[Settlement]:
        query = sa.select(Settlement).order_by(Settlement.id.desc()).limit(size + 1)
        if after is not None:
            query = query.where(Settlement.id < after)
        return list(db.scalars(query))

    rows = await ctx.db(page)
    chunk = rows[:size]
    return SettlementPage(
        items=[_settlement(r) for r in chunk],
        next_cursor=next_cursor(chunk[-1].id) if len(rows) > size else None,
    )


SETTLEMENT_ID = Param(
    "settlement_id",
    "the settlement's id: `anchor-<period end>`, or an Ark commitment txid",
    example="anchor-1767225600",
)


@api.get(
    "/settlements/{settlement_id}",
    SettlementOut,
    summary="One L1 settlement, with its history and last error",
    tag="settlement",
    params=(SETTLEMENT_ID,),
    errors=(404,),
)
async def settlement(ctx: ApiContext, settlement_id: str) -> SettlementOut:
    row = await ctx.db(lambda db: db.get(Settlement, settlement_id))
    if row is None:
        raise not_found(f"no settlement {settlement_id}")
    return _settlement(row)


def _proof_rows(
    db: Session, settlement_id: str, ark_txid: str
) -> tuple[Settlement, list[str] | None] | None:
    """The settlement and its leaves in leaf order; the leaves are None (not read at all)
    when ``ark_txid`` is not one of them."""
    row = db.get(Settlement, settlement_id)
    if row is None:
        return None
    held = db.scalar(
        sa.select(SettlementLeaf.position).where(
            SettlementLeaf.settlement_id == settlement_id, SettlementLeaf.ark_txid == ark_txid
        )
    )
    if held is None:
        return row, None
    leaves = db.scalars(
        sa.select(SettlementLeaf.ark_txid)
        .where(SettlementLeaf.settlement_id == settlement_id)
        .order_by(SettlementLeaf.position)
    )
    return row, list(leaves)


@api.get(
    "/settlements/{settlement_id}/proof/{ark_txid}",
    SettlementProof,
    summary="A merkle proof that a settlement commits to an ark transaction",
    tag="settlement",
    params=(
        SETTLEMENT_ID,
        Param(
            "ark_txid",
            "the ark transaction's id: 64 hex characters, as ark txids are displayed",
            pattern=HEX64,
        ),
    ),
    errors=(400, 404),
)
async def settlement_proof(ctx: ApiContext, settlement_id: str, ark_txid: str) -> SettlementProof:
    """The path from the transaction's leaf to the settlement's merkle root, built from the
    leaves the settlement recorded. Check it against the gateway's signed 31342 (kind 31342,
    `d` = `l1:<settlement_id>`) with `arkrelay settlement verify`; docs/settlement.md
    specifies the tree for anyone verifying by other means."""
    txid = ark_txid.lower()
    if not _TXID.fullmatch(txid):
        raise bad_request(f"not an ark txid (64 hex characters): {ark_txid!r}")
    found = await ctx.db(_proof_rows, settlement_id, txid)
    if found is None:
        raise not_found(f"no settlement {settlement_id}")
    row, leaves = found
    if leaves is None:
        raise not_found(f"settlement {settlement_id} does not commit to {txid}")
    # Hashing every leaf of a large period is work for a thread, not for the event loop.
    proof = await trio.to_thread.run_sync(build_proof, leaves, txid)
    if (
        proof.merkle_root != row.merkle_root
        or proof.count != len(leaves)
        or proof.count != row.l2_tx_count
        or leaves[proof.index] != txid
    ):
        # The stored root, count or leaf order disagree with the leaves: a proof served now
        # would not verify, so refuse it and leave the evidence in the log.
        log.error(
            "settlement %s is inconsistent: stored root %s and count %d, its %d leaves give "
            "root %s with %s at index %d",
            settlement_id,
            row.merkle_root,
            row.l2_tx_count,
            len(leaves),
            proof.merkle_root,
            txid,
            proof.index,
        )
        raise HttpError(500, f"settlement {settlement_id} is inconsistent; the gateway logged it")
    return SettlementProof(
        settlement_id=row.id,
        ark_txid=txid,
        index=proof.index,
        count=proof.count,
        path=[ProofStepOut(step.side, step.hash) for step in proof.path],
        merkle_root=proof.merkle_root,
        state=row.state,
        l1_txid=row.l1_txid,
        block_height=row.block_height,
        period_start=row.period_start,
        period_end=row.period_end,
    )
