"""Settlement rows: blocking functions, each run inside one transaction of the engine's Store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import ArkRelayError
from ..identity import ServiceIdentity
from ..interfaces import SettlementRecord
from ..nostr import Event
from ..outbox import enqueue
from ..protocol import Kind, L1Commitment
from ..store.models import L2Transaction, Settlement, SettlementLeaf
from .merkle import merkle_root, ordered_leaves

__all__ = [
    "SettlementConflict",
    "advance",
    "commitment_event",
    "get",
    "known",
    "last_period_end",
    "open_settlement",
    "publish",
    "record",
    "uncommitted",
    "unfinished",
]

#: States a settlement moves through; a state may only move forward (or to failed).
_ORDER = ("collecting", "committed", "confirming", "confirmed", "published")
_DONE = ("published", "failed")


class SettlementConflict(ArkRelayError):
    """A settlement asked to move backwards, skip publication rules, or is unknown."""


def record(row: Settlement) -> SettlementRecord:
    return SettlementRecord(
        id=row.id,
        strategy=row.strategy,
        state=row.state,  # type: ignore[arg-type]
        period_start=row.period_start,
        period_end=row.period_end,
        merkle_root=row.merkle_root,
        l2_tx_count=row.l2_tx_count,
        l1_txid=row.l1_txid,
        block_height=row.block_height,
        confirmations=row.confirmations,
        context=dict(row.context or {}),
        history=list(row.history or []),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def uncommitted(db: Session, before: int) -> list[tuple[str, int]]:
    rows = db.execute(
        sa.select(L2Transaction.ark_txid, L2Transaction.finalized_at)
        .where(L2Transaction.settlement_id.is_(None))
        .where(L2Transaction.finalized_at < before)
        .order_by(L2Transaction.finalized_at, L2Transaction.ark_txid)
    )
    return [(txid, int(at)) for txid, at in rows]


def known(db: Session, candidates: Sequence[str]) -> list[str]:
    if not candidates:
        return []
    rows = db.scalars(
        sa.select(L2Transaction.ark_txid)
        .where(L2Transaction.ark_txid.in_(list(candidates)))
        .where(L2Transaction.settlement_id.is_(None))
        .order_by(L2Transaction.finalized_at, L2Transaction.ark_txid)
    )
    return list(rows)


def get(db: Session, settlement_id: str) -> SettlementRecord | None:
    row = db.get(Settlement, settlement_id)
    return None if row is None else record(row)


def open_settlement(
    db: Session,
    settlement_id: str,
    *,
    strategy: str,
    period_start: int,
    period_end: int,
    ark_txids: Sequence[str],
    context: Mapping[str, Any] | None,
    now: int,
) -> SettlementRecord:
    existing = db.get(Settlement, settlement_id)
    if existing is not None:
        return record(existing)
    leaves = ordered_leaves(ark_txids)
    if not leaves:
        raise SettlementConflict(f"settlement {settlement_id} has no L2 transactions to commit")
    row = Settlement(
        id=settlement_id,
        strategy=strategy,
        state="collecting",
        period_start=period_start,
        period_end=period_end,
        merkle_root=merkle_root(leaves),
        l2_tx_count=len(leaves),
        confirmations=0,
        history=[{"state": "collecting", "at": now, "note": f"{len(leaves)} L2 transactions"}],
        context=dict(context or {}),
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    db.flush()
    db.add_all(
        SettlementLeaf(settlement_id=settlement_id, position=i, ark_txid=txid)
        for i, txid in enumerate(leaves)
    )
    taken = db.execute(
        sa.update(L2Transaction)
        .where(L2Transaction.ark_txid.in_(leaves))
        .where(L2Transaction.settlement_id.is_(None))
        .values(settlement_id=settlement_id)
    ).rowcount
    if taken != len(leaves):
        # Rolls the whole settlement back: a leaf that is unknown or held elsewhere would
        # be committed twice, or a transaction this gateway never finalized.
        raise SettlementConflict(
            f"settlement {settlement_id}: {len(leaves) - taken} of its transactions are "
            "not finalized here or are held by another settlement"
        )
    return record(row)


def unfinished(db: Session, strategy: str) -> list[SettlementRecord]:
    rows = db.scalars(
        sa.select(Settlement)
        .where(Settlement.strategy == strategy)
        .where(Settlement.state.not_in(_DONE))
        .order_by(Settlement.period_end, Settlement.id)
    )
    return [record(r) for r in rows]


def last_period_end(db: Session, strategy: str) -> int | None:
    return db.scalar(
        sa.select(sa.func.max(Settlement.period_end)).where(Settlement.strategy == strategy)
    )


def _locked(db: Session, settlement_id: str) -> Settlement:
    row = db.scalars(
        sa.select(Settlement).where(Settlement.id == settlement_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise SettlementConflict(f"no settlement {settlement_id}")
    return row


def advance(
    db: Session,
    settlement_id: str,
    state: str,
    *,
    note: str,
    fields: Mapping[str, Any],
    context: Mapping[str, Any] | None,
    now: int,
) -> SettlementRecord:
    row = _locked(db, settlement_id)
    if row.state in _DONE:
        raise SettlementConflict(f"settlement {settlement_id} is already {row.state}")
    if state == "published":
        raise SettlementConflict("a settlement is published only with its 31342 (publish)")
    if state != "failed" and _ORDER.index(state) < _ORDER.index(row.state):
        raise SettlementConflict(
            f"settlement {settlement_id} cannot go back from {row.state} to {state}"
        )
    for name, value in fields.items():
        setattr(row, name, value)
    if context:
        row.context = {**(row.context or {}), **context}
    if state != row.state or note:
        row.history = [*(row.history or []), {"state": state, "at": now, "note": note}]
    if state == "failed":
        # Its transactions go back to the pool for a later settlement.
        db.execute(
            sa.update(L2Transaction)
            .where(L2Transaction.settlement_id == settlement_id)
            .values(settlement_id=None)
        )
    row.state = state
    row.updated_at = now
    return record(row)


def commitment_event(row: Settlement, identity: ServiceIdentity) -> Event:
    if row.l1_txid is None or row.block_height is None or row.merkle_root is None:
        raise SettlementConflict(f"settlement {row.id} is not confirmed on L1 yet")
    content = L1Commitment(
        l1_txid=row.l1_txid,
        block_height=row.block_height,
        merkle_root_of_l2_txs=row.merkle_root,
        l2_tx_count=row.l2_tx_count,
        period_start=row.period_start,
        period_end=row.period_end,
    )
    return identity.sign_event(
        Kind.L1_COMMITMENT, msgspec.json.encode(content).decode(), [["d", f"l1:{row.id}"]]
    )


def publish(
    db: Session, settlement_id: str, identity: ServiceIdentity, *, now: int
) -> tuple[SettlementRecord, Event]:
    row = _locked(db, settlement_id)
    if row.state != "confirmed":
        raise SettlementConflict(
            f"settlement {settlement_id} is {row.state}; only a confirmed one is published"
        )
    event = commitment_event(row, identity)
    enqueue(db, event, now=now)
    row.state = "published"
    row.updated_at = now
    row.history = [
        *(row.history or []),
        {"state": "published", "at": now, "note": f"31342 {event.id}"},
    ]
    return record(row), event
