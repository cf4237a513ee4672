"""Typed ORM models of every ArkRelay table; ``Base.metadata`` is the schema migrations match."""

from __future__ import annotations

from .base import MAX_CLIENT_ID_LENGTH, NAMING_CONVENTION, Base
from .ceremony import (
    CHALLENGE_TYPES,
    DM_SCHEMES,
    FINAL_SESSION_STATES,
    SESSION_STATES,
    Batch,
    CeremonySession,
    Challenge,
    Intent,
)
from .ledger import INVOICE_DIRECTIONS, VTXO_STATUSES, Asset, Invoice, Vtxo
from .relay import EventIn, OutboxEvent
from .settlement import SETTLEMENT_STATES, L2Transaction, Settlement, SettlementLeaf

__all__ = [
    "CHALLENGE_TYPES",
    "DM_SCHEMES",
    "FINAL_SESSION_STATES",
    "INVOICE_DIRECTIONS",
    "MAX_CLIENT_ID_LENGTH",
    "NAMING_CONVENTION",
    "SESSION_STATES",
    "SETTLEMENT_STATES",
    "VTXO_STATUSES",
    "Asset",
    "Base",
    "Batch",
    "CeremonySession",
    "Challenge",
    "EventIn",
    "Intent",
    "Invoice",
    "L2Transaction",
    "OutboxEvent",
    "Settlement",
    "SettlementLeaf",
    "Vtxo",
]
