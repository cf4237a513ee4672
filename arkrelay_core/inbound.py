"""The first step every inbound event takes: its id is stored before anything acts on it.

That row is what drops the copy a second relay delivers, or a relay replays after a
restart (PROTOCOL.md §1). The ceremony engine builds on this; the transport has already
verified id and signature.
"""

from __future__ import annotations

import time

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .nostr import Event
from .store.models import EventIn

__all__ = ["remember_event"]


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
    row = EventIn(
        id=event.id,
        pubkey=event.pubkey,
        kind=event.kind,
        created_at=event.created_at,
        received_at=int(time.time() if now is None else now),
        event=msgspec.to_builtins(event) if handler is not None else None,
        handler=handler,
    )
    with sessions() as session:
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            if session.get(EventIn, event.id) is not None:
                return False
            raise
    return True
