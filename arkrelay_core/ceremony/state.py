"""The typed state that travels between a session's transactions and its flows.

``Snap`` is a session as one transaction read or left it (what ``drive`` goes on from);
``Outcome`` is what recording a signing response did, one tagged variant per case. The
session's stored ``context`` column keeps its JSON shape: sessions written by any
version resume.
"""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..store.models import CeremonySession
from .records import Transition, lock_batch

__all__ = [
    "Drive",
    "Failed",
    "Held",
    "Ignored",
    "IntentRef",
    "Next",
    "Outcome",
    "Snap",
    "lock_snapshot",
    "snapshot",
]


class IntentRef(msgspec.Struct, frozen=True):
    """A session's intent as recorded: its action type and its params (stored JSON)."""

    type: str
    params: Any


class Snap(msgspec.Struct, kw_only=True):
    """A session's row as plain data, carried out of the transaction that read it."""

    id: str
    state: str
    type: str
    author: str
    batch_id: str | None
    intent_event_id: str
    #: The stored ``context`` column (a copy: changing it changes no row).
    context: Any
    step_index: int
    step_total: int
    expires_at: int
    step_expires_at: int | None
    scheme: str
    #: The intent, when the transaction that opened the session handed it over.
    intent: IntentRef | None = None
    #: The answered challenges' signatures by step, when the handing transaction had them.
    signatures: dict[int, str] | None = None


#: A session as a step's transaction left it (see ``steps.hand_over``); None: read it again.
Held = Snap | None


class Ignored(msgspec.Struct, tag="ignored"):
    """A response that must not touch its session (PROTOCOL.md §3)."""

    reason: str
    #: The session's author, when the response was ignored for not being theirs.
    author: str | None = None


class Failed(msgspec.Struct, tag="failed"):
    """The response was the author's but wrong: the session ended."""

    session_id: str
    transitions: list[Transition]


class Next(msgspec.Struct, tag="next"):
    """The next challenge is queued (or the same one again, once its second is over)."""

    session_id: str
    #: The queued challenge's event id; None when it goes out at ``deadline``.
    event: str | None
    deadline: float


class Drive(msgspec.Struct, tag="drive"):
    """The round is closed (or this leg's part of it): drive ``sessions`` now."""

    sessions: list[str]
    transitions: list[Transition]
    #: The first of ``sessions`` as the transaction left it, when it may be used.
    held: Held = None


#: What recording a 31512 did; None: it was recorded before a restart.
Outcome = Ignored | Failed | Next | Drive


def snapshot(row: CeremonySession) -> Snap:
    """The session's fields as plain data, to carry out of the transaction."""
    return Snap(
        id=row.id,
        state=row.state,
        type=row.type,
        author=row.author,
        batch_id=row.batch_id,
        intent_event_id=row.intent_event_id,
        context=dict(row.context),
        step_index=row.step_index,
        step_total=row.step_total,
        expires_at=row.expires_at,
        step_expires_at=row.step_expires_at,
        scheme=row.scheme,
    )


def lock_snapshot(db: Session, snap: Snap) -> CeremonySession | None:
    """``records.lock_session`` for a session read before (``snap``): a session's batch is
    set when it opens and never changes, so its batch row is locked first without reading
    the session twice."""
    if snap.batch_id is not None:
        lock_batch(db, snap.batch_id)
    return db.scalar(
        sa.select(CeremonySession).where(CeremonySession.id == snap.id).with_for_update()
    )
