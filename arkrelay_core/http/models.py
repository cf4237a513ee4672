"""What the HTTP API answers: msgspec models, also the source of the OpenAPI schemas."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "AssetOut",
    "BalanceOut",
    "Balances",
    "Check",
    "Health",
    "InfoOut",
    "IntentOut",
    "InvoiceStatus",
    "Page",
    "ProofStepOut",
    "Readiness",
    "SessionOut",
    "SettlementHistoryEntry",
    "SettlementOut",
    "SettlementPage",
    "SettlementProof",
    "VtxoOut",
    "VtxoPage",
]


class Health(msgspec.Struct):
    status: str


class Check(msgspec.Struct):
    ok: bool
    detail: str


class Readiness(msgspec.Struct):
    """``ready`` only if every check is ok (the response is then 200, else 503)."""

    ready: bool
    checks: dict[str, Check]


class AssetOut(msgspec.Struct):
    asset_id: str
    ticker: str
    name: str
    decimals: int
    enabled: bool
    is_gateway_asset: bool


class InfoOut(msgspec.Struct):
    service_pubkey: str
    npub: str
    network: str
    #: The gateway's own relay, if it runs one.
    endpoint_url: str | None
    #: External relays the gateway publishes to and reads from.
    relays: list[str]
    fees: dict[str, Any]
    assets: list[AssetOut]
    #: Plugin name -> distribution version, for every plugin the config enables.
    plugins: dict[str, str]


class SessionOut(msgspec.Struct):
    session_id: str
    intent_event_id: str
    author: str
    type: str
    state: str
    step_index: int
    step_total: int
    batch_id: str | None
    error_code: int | None
    error_message: str | None
    created_at: int
    updated_at: int
    expires_at: int


class IntentOut(msgspec.Struct):
    event_id: str
    author: str
    action_id: str
    type: str
    params: dict[str, Any]
    received_at: int
    expires_at: int
    batch_id: str | None
    session_id: str | None
    state: str | None


class VtxoOut(msgspec.Struct):
    vtxo_id: str
    asset_id: str
    ticker: str | None
    amount: int
    status: str
    expires_at: int


class Page(msgspec.Struct):
    """A page of a list; pass ``next_cursor`` as ``cursor`` for the next (null: the end)."""

    next_cursor: str | None


class VtxoPage(Page):
    items: list[VtxoOut]


class BalanceOut(msgspec.Struct):
    asset_id: str
    ticker: str | None
    amount: int


class Balances(msgspec.Struct):
    pubkey: str
    balances: list[BalanceOut]


class InvoiceStatus(msgspec.Struct):
    payment_hash: str
    #: "in" (a lift's hold invoice) or "out" (a land's payment).
    direction: str
    state: str
    amount_sat: int
    asset_id: str
    expires_at: int
    updated_at: int


class SettlementHistoryEntry(msgspec.Struct):
    """A change of state, or a noteworthy event within one (a fee bump, a confirmation)."""

    state: str
    #: Unix seconds.
    at: int
    note: str


class SettlementOut(msgspec.Struct):
    settlement_id: str
    strategy: str
    state: str
    period_start: int
    period_end: int
    merkle_root: str | None
    l1_txid: str | None
    block_height: int | None
    #: The ark transactions the merkle root commits to.
    l2_tx_count: int
    #: L1 confirmations of the commitment seen so far (0 before it is mined).
    confirmations: int
    #: Oldest first (docs/settlement.md §5).
    history: list[SettlementHistoryEntry]
    #: The last failure the strategy recorded while advancing it (its
    #: ``context.last_error``), or null.
    last_error: str | None


class SettlementPage(Page):
    items: list[SettlementOut]


class ProofStepOut(msgspec.Struct):
    """A sibling on the way from the leaf up to the root: ``side`` is where the sibling sits,
    so a ``left`` step hashes ``sibling || current`` and a ``right`` step ``current ||
    sibling`` (docs/settlement.md)."""

    side: Literal["left", "right"]
    hash: str


class SettlementProof(msgspec.Struct):
    """That ``ark_txid`` is leaf ``index`` of the ``count`` leaves under ``merkle_root``.

    Fold ``path`` over the leaf's hash to get ``merkle_root``; the gateway's 31342 with
    ``d`` = ``l1:<settlement_id>`` signs that root (``arkrelay settlement verify`` checks
    both). ``l1_txid`` and ``block_height`` are null until the commitment is broadcast and
    confirmed."""

    settlement_id: str
    ark_txid: str
    index: int
    count: int
    path: list[ProofStepOut]
    merkle_root: str
    state: str
    l1_txid: str | None
    block_height: int | None
    period_start: int
    period_end: int
