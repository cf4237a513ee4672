"""Intents, the signing sessions they open, their challenges, and atomic batches."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import AutoId, Base, ClientId, Hex64, JsonDoc, Label, UnixTime, check_in

__all__ = [
    "CHALLENGE_TYPES",
    "DM_SCHEMES",
    "FINAL_SESSION_STATES",
    "SESSION_STATES",
    "Batch",
    "CeremonySession",
    "Challenge",
    "Intent",
]

# PROTOCOL.md §3, in order; the last four are final.
SESSION_STATES: tuple[str, ...] = (
    "intent_received",
    "ark_tx_prepared",
    "checkpoint_txs_prepared",
    "signatures_collected",
    "ark_executed",
    "completed",
    "failed",
    "expired",
    "cancelled",
)
FINAL_SESSION_STATES: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})
CHALLENGE_TYPES: tuple[str, ...] = ("sign_tx", "sign_payload")
DM_SCHEMES: tuple[str, ...] = ("nip44", "nip04")


class Intent(Base):
    """An accepted 31510 action intent; (author, action_id) is processed at most once, ever."""

    __tablename__ = "intents"
    __table_args__ = (UniqueConstraint("author", "action_id"), Index(None, "batch_id"))

    event_id: Mapped[Hex64] = mapped_column(primary_key=True)
    author: Mapped[Hex64]
    action_id: Mapped[ClientId]
    type: Mapped[Label]
    params: Mapped[JsonDoc]
    raw_event: Mapped[JsonDoc]
    network: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[UnixTime]
    received_at: Mapped[UnixTime]
    batch_id: Mapped[ClientId | None]


class Batch(Base):
    """A solver's ``submit_batch``: every leg executes in one ark transaction, or none does."""

    __tablename__ = "batches"

    id: Mapped[ClientId] = mapped_column(primary_key=True)
    submitter: Mapped[Hex64]
    request_event_id: Mapped[Hex64]
    state: Mapped[str] = mapped_column(String(32))
    ark_txid: Mapped[Hex64 | None]
    created_at: Mapped[UnixTime]
    updated_at: Mapped[UnixTime]
    #: The shared ark transaction of every leg, while it is built, signed and submitted.
    context: Mapped[JsonDoc] = mapped_column(default=dict, server_default="{}")


class CeremonySession(Base):
    """The signing ceremony one intent opens; ``id`` is ``sess_`` + 24 hex of the intent id.

    A gateway instance owns a session while its lease is current; instances claim expired
    leases with ``SELECT ... FOR UPDATE SKIP LOCKED`` on (state, lease_expires_at).
    """

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(check_in("state", SESSION_STATES), name="state"),
        CheckConstraint(check_in("scheme", DM_SCHEMES), name="scheme"),
        Index(None, "state", "lease_expires_at"),
        # An author's open sessions: counted, and their inputs read, at every intent.
        Index(None, "author", "state"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    intent_event_id: Mapped[Hex64] = mapped_column(ForeignKey("intents.event_id"), unique=True)
    author: Mapped[Hex64]
    type: Mapped[Label]
    state: Mapped[str] = mapped_column(String(32))
    step_index: Mapped[int] = mapped_column(Integer(), default=0)
    step_total: Mapped[int] = mapped_column(Integer(), default=0)
    batch_id: Mapped[ClientId | None] = mapped_column(ForeignKey("batches.id"))
    scheme: Mapped[str] = mapped_column(String(8))
    context: Mapped[JsonDoc] = mapped_column(default=dict)
    error_code: Mapped[int | None] = mapped_column(Integer())
    error_message: Mapped[str | None]
    created_at: Mapped[UnixTime]
    updated_at: Mapped[UnixTime]
    expires_at: Mapped[UnixTime]
    step_expires_at: Mapped[UnixTime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[UnixTime | None]

    # Many-to-one links also order a unit of work: an intent and the session it opens can be
    # added in one transaction and the intent is inserted first.
    intent: Mapped[Intent] = relationship()
    batch: Mapped[Batch | None] = relationship()


class Challenge(Base):
    """One 31511 signing challenge (one signature) and, once answered, the wallet's reply."""

    __tablename__ = "challenges"
    __table_args__ = (
        UniqueConstraint("session_id", "step_index"),
        CheckConstraint(check_in("type", CHALLENGE_TYPES), name="type"),
    )

    id: Mapped[AutoId]
    session_id: Mapped[str] = mapped_column(String(32), ForeignKey("sessions.id"))
    step_index: Mapped[int] = mapped_column(Integer())
    type: Mapped[str] = mapped_column(String(16))
    payload_to_sign: Mapped[Hex64]
    payload_ref: Mapped[str] = mapped_column(String(80))
    content: Mapped[JsonDoc]
    event_id: Mapped[Hex64 | None]
    created_at: Mapped[UnixTime]
    expires_at: Mapped[UnixTime]
    response_event_id: Mapped[Hex64 | None]
    signature: Mapped[str | None] = mapped_column(String(128))
    answered_at: Mapped[UnixTime | None]

    session: Mapped[CeremonySession] = relationship()
