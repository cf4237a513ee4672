"""The first step every inbound event takes: its id is stored before anything acts on it.

That row is what drops the copy a second relay delivers, or a relay replays after a
restart (PROTOCOL.md §1). The ceremony engine builds on this; the transport has already
verified id and signature.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .nostr import Event
from .store.models import EventIn

__all__ = ["mark_handled", "remember_event", "remember_events"]

_TABLE = EventIn.__table__


#: Per dialect: INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id, built once.
_INSERT_NEW = {
    name: insert(_TABLE).on_conflict_do_nothing(index_elements=[_TABLE.c.id]).returning(_TABLE.c.id)
    for name, insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))
}
#: One row per parameter set (an executemany): the statement is the same whatever the
#: number of ids, so it is compiled once.
_MARK_HANDLED = (
    sa.update(_TABLE)
    .where(_TABLE.c.id == sa.bindparam("event_id"))
    .values(handled_at=sa.bindparam("now"))
)


def remember_events(
    db: Session,
    events: Sequence[Event],
    *,
    now: float | None = None,
    handler: str | None = None,
) -> list[bool]:
    """Store the events' ids in the caller's transaction (``Store.run`` it): for each
    event, False if its id was already stored (a duplicate to drop), also by an earlier
    event of ``events``.

    One statement whatever the batch size: ids already known are skipped by the database
    (``ON CONFLICT DO NOTHING``), which also settles two instances storing the same id at
    once.
    """
    received = int(time.time() if now is None else now)
    distinct: dict[str, Event] = {}
    for event in events:
        distinct.setdefault(event.id, event)
    rows = [
        {
            "id": event.id,
            "pubkey": event.pubkey,
            "kind": event.kind,
            "created_at": event.created_at,
            "received_at": received,
            "event": msgspec.to_builtins(event) if handler is not None else None,
            "handler": handler,
        }
        for event in distinct.values()
    ]
    stored: set[str] = set()
    if rows:
        connection = db.connection()
        statement = _INSERT_NEW[connection.dialect.name]
        stored = set(connection.execute(statement, rows).scalars())
    fresh = []
    for event in events:
        fresh.append(event.id in stored)
        stored.discard(event.id)  # a second copy in the same batch is a duplicate
    return fresh


def remember_event(
    db: Session, event: Event, *, now: float | None = None, handler: str | None = None
) -> bool:
    """Store the event's id in the caller's transaction; False if it was already stored
    (a duplicate to drop)."""
    return remember_events(db, [event], now=now, handler=handler)[0]


def mark_handled(db: Session, event_ids: Sequence[str], *, now: float | None = None) -> None:
    """Mark the events handled in the caller's transaction: a restart need not handle
    them again."""
    moment = int(time.time() if now is None else now)
    if event_ids:
        rows = [{"event_id": event_id, "now": moment} for event_id in event_ids]
        db.connection().execute(_MARK_HANDLED, rows)
