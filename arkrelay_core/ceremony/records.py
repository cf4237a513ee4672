"""The engine's transactions on sessions: each state change commits with its events.

Functions here run inside :meth:`Store.run` (a worker thread, one transaction). They
return plain values; the engine fires observers and wakes the outbox after the commit.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..nostr import Event
from ..outbox import enqueue
from ..protocol import SessionState, can_transition
from ..store.models import FINAL_SESSION_STATES, Batch, CeremonySession, Challenge, OutboxEvent

__all__ = [
    "FINAL",
    "WAITING",
    "SessionView",
    "Transition",
    "add_unique",
    "legs_of",
    "lock_batch",
    "lock_session",
    "move",
    "republish",
    "take_lease",
]


#: Final states, as stored (for ``IN`` / ``NOT IN`` queries and row checks).
FINAL = tuple(sorted(FINAL_SESSION_STATES))
#: States in which a session waits for its wallet's signatures.
WAITING = (SessionState.ARK_TX_PREPARED, SessionState.CHECKPOINT_TXS_PREPARED)


@dataclasses.dataclass(frozen=True)
class SessionView:
    """What observers see of a session (``arkrelay_session_transition``): a copy."""

    id: str
    author: str
    type: str
    step_index: int
    step_total: int
    error_code: int | None
    error_message: str | None
    #: When the session entered the state it is leaving (unix time; its last update).
    entered_at: int = 0


@dataclasses.dataclass(frozen=True)
class Transition:
    session_id: str
    old: str
    new: str
    view: SessionView | None = None
    #: When to look at the session next (its step or session deadline), if not final.
    deadline: float | None = None


def lock_session(db: Session, session_id: str) -> CeremonySession | None:
    """The session row, locked for this transaction (PostgreSQL; SQLite is serialized).

    A batch leg's transaction may touch every leg, so its batch row is locked first: the
    transactions of one batch then run one at a time and cannot deadlock on the legs.
    """
    batch_id = db.scalar(
        sa.select(CeremonySession.batch_id).where(CeremonySession.id == session_id)
    )
    if batch_id is not None:
        lock_batch(db, batch_id)
    return db.scalar(
        sa.select(CeremonySession).where(CeremonySession.id == session_id).with_for_update()
    )


def lock_batch(db: Session, batch_id: str) -> Batch | None:
    return db.scalar(sa.select(Batch).where(Batch.id == batch_id).with_for_update())


def take_lease(
    row: CeremonySession, instance: str, ttl: float, *, now: float, steal: bool = False
) -> bool:
    """Lease ``row`` to ``instance`` unless another live instance holds it (or ``steal``)."""
    live = (
        row.lease_owner not in (None, instance)
        and row.lease_expires_at is not None
        and row.lease_expires_at > now
    )
    if live and not steal:
        return False
    # A lease of ours with more than half its time left stands: the renewal loop runs
    # every third of it, and not rewriting the row spares the transaction an UPDATE.
    if (
        row.lease_owner == instance
        and row.lease_expires_at is not None
        and row.lease_expires_at > now + ttl / 2
    ):
        return True
    row.lease_owner = instance
    row.lease_expires_at = int(now + ttl)
    return True


def move(
    db: Session,
    row: CeremonySession,
    new: SessionState,
    *,
    events: Sequence[Event] = (),
    now: float | None = None,
    **fields: Any,
) -> Transition:
    """Change ``row``'s state (legal moves only) and queue its events, in this transaction."""
    moment = time.time() if now is None else now
    old = SessionState(row.state)
    entered_at = row.updated_at
    if old != new and not can_transition(old, new):
        raise RuntimeError(f"session {row.id}: illegal move {old} -> {new}")
    row.state = str(new)
    row.updated_at = int(moment)
    for name, value in fields.items():
        setattr(row, name, value)
    if new.is_final:
        row.step_expires_at = None
        row.lease_owner = None
        row.lease_expires_at = None
    for event in events:
        enqueue(db, event, now=moment)
    view = SessionView(
        row.id,
        row.author,
        row.type,
        row.step_index,
        row.step_total,
        row.error_code,
        row.error_message,
        entered_at,
    )
    deadline = None if new.is_final else float(row.step_expires_at or row.expires_at)
    return Transition(row.id, str(old), str(new), view, deadline)


def republish(db: Session, event_ids: Sequence[str], *, now: float) -> None:
    """Send stored events again, unchanged (same id): a resumed session's open challenge."""
    if event_ids:
        db.execute(
            sa.update(OutboxEvent)
            .where(OutboxEvent.event_id.in_(list(event_ids)))
            .values(acked_at=None, next_attempt_at=int(now), attempts=0)
        )


def challenge_row(db: Session, session_id: str, step_index: int) -> Challenge | None:
    return db.scalar(
        sa.select(Challenge).where(
            Challenge.session_id == session_id, Challenge.step_index == step_index
        )
    )


def signatures(db: Session, session_id: str) -> dict[int, str]:
    rows = db.execute(
        sa.select(Challenge.step_index, Challenge.signature).where(
            Challenge.session_id == session_id, Challenge.signature.is_not(None)
        )
    )
    return {step: sig for step, sig in rows}


def legs_of(db: Session, batch_id: str) -> list[CeremonySession]:
    """Every leg of a batch, first leg (the one doing the batch's work) first, locked."""
    return list(
        db.scalars(
            sa.select(CeremonySession)
            .where(CeremonySession.batch_id == batch_id)
            .order_by(CeremonySession.id)
            .with_for_update()
        ).all()
    )


def add_unique(db: Session, row: Any, error: Exception) -> None:
    """Insert ``row`` now; ``error`` (raised from the IntegrityError) if its key is taken."""
    db.add(row)
    try:
        db.flush()
    except IntegrityError as exc:
        raise error from exc
