"""What the transactions of every flow share: handing the session over to the next piece
of work, and ending it with a 31341 (with the open legs of its batch).

Functions taking ``db`` run inside one :meth:`Store.run` transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..protocol import SessionState
from ..store.models import Batch, CeremonySession
from .ports import Ports
from .records import FINAL, Transition, legs_of, move, take_lease
from .state import Held, snapshot

__all__ = ["fail_in", "hand_over", "lease_ok"]


def lease_ok(ports: Ports, row: CeremonySession, now: float, *, steal: bool = False) -> bool:
    return take_lease(row, ports.instance, ports.settings.lease_ttl.seconds, now=now, steal=steal)


def hand_over(
    ports: Ports,
    db: Session,
    row: CeremonySession,
    now: float,
    *,
    signed: dict[int, str] | None = None,
) -> Held:
    """``row`` as this transaction leaves it, for ``drive``'s next piece of work: what
    claiming it in a transaction of its own would read, lease checked and held the same
    way. None when this instance may not go on with it. ``signed``: the answered
    challenges' signatures by step (what submitting or finalizing reads), if known."""
    if row.batch_id is not None:
        return None  # other legs' transactions change a leg too, under their own locks
    if row.state not in FINAL and not lease_ok(ports, row, now):
        return None
    snap = snapshot(row)
    if signed is not None:
        snap.signatures = dict(signed)
    return snap


def fail_in(
    ports: Ports,
    db: Session,
    row: CeremonySession,
    code: ErrorCode,
    message: str,
    now: float,
    *,
    state: SessionState = SessionState.FAILED,
) -> list[Transition]:
    """End ``row`` with one 31341 (in the caller's transaction); legs of its batch
    that are still open end with 3005."""
    transitions = [_end(ports, db, row, code, message, now, state)]
    if row.batch_id is not None:
        batch = db.get(Batch, row.batch_id)
        if batch is not None and batch.state not in FINAL:
            batch.state, batch.updated_at = "failed", int(now)
        for leg in legs_of(db, row.batch_id):
            if leg.id != row.id and leg.state not in FINAL:
                transitions.append(
                    _end(
                        ports,
                        db,
                        leg,
                        ErrorCode.BATCH_COUNTERPARTY_FAILED,
                        f"another leg of batch {row.batch_id} failed ({int(code)})",
                        now,
                        SessionState.FAILED,
                    )
                )
    return transitions


def _end(
    ports: Ports,
    db: Session,
    row: CeremonySession,
    code: ErrorCode,
    message: str,
    now: float,
    state: SessionState,
) -> Transition:
    notice = ports.messages.failure(
        code,
        author=row.author,
        ref_id=row.context.get("action_id") or row.id,
        answered=[row.intent_event_id],
        scheme=row.scheme,
        message=message,
        expires_at=row.expires_at,
    )
    return move(
        db, row, state, events=[notice], now=now, error_code=int(code), error_message=message
    )
