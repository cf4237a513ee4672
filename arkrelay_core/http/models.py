"""What the HTTP API answers: msgspec models, also the source of the OpenAPI schemas."""

from __future__ import annotations

from typing import Any

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
    "Readiness",
    "SessionOut",
    "SettlementOut",
    "SettlementPage",
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


class SettlementOut(msgspec.Struct):
    settlement_id: str
    strategy: str
    state: str
    period_start: int
    period_end: int
    merkle_root: str | None
    l1_txid: str | None
    block_height: int | None


class SettlementPage(Page):
    items: list[SettlementOut]
