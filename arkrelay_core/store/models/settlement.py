"""L1 commitments of the L2 history (published as 31342)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Hex64, JsonList, Label, UnixTime, check_in

__all__ = ["SETTLEMENT_STATES", "Settlement"]

SETTLEMENT_STATES: tuple[str, ...] = (
    "collecting",
    "committed",
    "confirming",
    "confirmed",
    "published",
    "failed",
)


class Settlement(Base):
    """One settlement period; ``history`` records each state change with its time."""

    __tablename__ = "settlements"
    __table_args__ = (CheckConstraint(check_in("state", SETTLEMENT_STATES), name="state"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy: Mapped[Label]
    state: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[UnixTime]
    period_end: Mapped[UnixTime]
    merkle_root: Mapped[Hex64 | None]
    l2_tx_count: Mapped[int] = mapped_column(Integer(), default=0)
    l1_txid: Mapped[Hex64 | None]
    block_height: Mapped[int | None] = mapped_column(Integer())
    confirmations: Mapped[int] = mapped_column(Integer(), default=0)
    history: Mapped[JsonList] = mapped_column(default=list)
    created_at: Mapped[UnixTime]
    updated_at: Mapped[UnixTime]
