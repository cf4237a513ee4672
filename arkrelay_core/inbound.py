"""The first step every inbound event takes: its id is stored before anything acts on it.

That row is what drops the copy a second relay delivers, or a relay replays after a
restart (PROTOCOL.md §1). The ceremony engine builds on this; the transport has already
verified id and signature.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from .nostr import Event
from .store.models import EventIn

__all__ = ["remember_event", "remember_events"]

_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def remember_events(
    sessions: sessionmaker[Session],
    events: Sequence[Event],
    *,
    now: float | None = None,
    handler: str | None = None,
) -> list[bool]:
    """Store the events' ids in one transaction: for each event, False if its id was
    already stored (a duplicate to drop), also by an earlier event of ``events``.

    One statement whatever the batch size: ids already known are skipped by the database
    (``ON CONFLICT DO NOTHING``), which also settles two instances storing the same id at
    once. Blocking (SQLAlchemy sync): call it through ``trio.to_thread.run_sync``.
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
    table = EventIn.__table__
    with sessions() as session, session.begin():
        insert = _INSERT[session.get_bind().dialect.name](table)
        statement = insert.on_conflict_do_nothing(index_elements=[table.c.id]).returning(table.c.id)
        stored = set(session.scalars(statement, rows)) if rows else set()
    fresh = []
    for event in events:
        fresh.append(event.id in stored)
        stored.discard(event.id)  # a second copy in the same batch is a duplicate
    return fresh


def remember_event(
    sessions: sessionmaker[Session],
    event: Event,
    *,
    now: float | None = None,
    handler: str | None = None,
) -> bool:
    """Store the event's id; False if it was already stored (a duplicate to drop).

    Blocking (SQLAlchemy sync): call it through ``trio.to_thread.run_sync``.
    """
    return remember_events(sessions, [event], now=now, handler=handler)[0]
