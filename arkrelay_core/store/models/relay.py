"""Nostr traffic: inbound event ids (dedup) and the durable outbox of events to publish."""

from __future__ import annotations

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import AutoId, Base, Hex64, JsonDoc, JsonList, Kind, UnixTime

__all__ = ["EventIn", "OutboxEvent"]


class EventIn(Base):
    """An inbound event id, stored before anything acts on the event.

    The primary key is what drops the copy that a second relay, or a replay after a restart,
    delivers.
    """

    __tablename__ = "events_in"
    __table_args__ = (Index(None, "received_at"), Index(None, "handled_at"))

    id: Mapped[Hex64] = mapped_column(primary_key=True)
    pubkey: Mapped[Hex64]
    kind: Mapped[Kind]
    created_at: Mapped[UnixTime]
    received_at: Mapped[UnixTime]
    #: The whole event and who took it, until it is handled: a gateway killed in between
    #: handles it again on restart (or another instance does, once the lease time passed).
    event: Mapped[JsonDoc | None]
    handler: Mapped[str | None] = mapped_column(String(128))
    handled_at: Mapped[UnixTime | None]


class OutboxEvent(Base):
    """A signed event the gateway must publish, kept until a relay acknowledges it.

    It is written in the same transaction as the state change that caused it; the publisher
    claims rows with ``acked_at IS NULL`` whose ``next_attempt_at`` has passed: it writes
    its instance name in ``claimed_by`` and pushes ``next_attempt_at`` to when the claim
    lapses, so that another instance leaves them alone until then.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "acked_at", "next_attempt_at"),)

    id: Mapped[AutoId]
    event_id: Mapped[Hex64] = mapped_column(unique=True)
    kind: Mapped[Kind]
    event: Mapped[JsonDoc]
    created_at: Mapped[UnixTime]
    attempts: Mapped[int] = mapped_column(Integer(), default=0)
    next_attempt_at: Mapped[UnixTime]
    acked_at: Mapped[UnixTime | None]
    accepted_relays: Mapped[JsonList] = mapped_column(default=list)
    last_error: Mapped[str | None]
    claimed_by: Mapped[str | None] = mapped_column(String(128))
