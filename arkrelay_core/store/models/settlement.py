"""L1 commitments of the L2 history (published as 31342), and the history they commit to."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Hex64, JsonDoc, JsonList, Label, UnixTime, check_in

__all__ = ["SETTLEMENT_STATES", "L2Transaction", "Settlement", "SettlementLeaf"]

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
    #: What the strategy needs to resume after a restart (fee rate, bumps, last broadcast).
    context: Mapped[JsonDoc] = mapped_column(default=dict, server_default="{}")


class SettlementLeaf(Base):
    """The ark txids a settlement's merkle root commits to, in leaf order."""

    __tablename__ = "settlement_leaves"
    __table_args__ = (Index(None, "ark_txid"),)

    settlement_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("settlements.id"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer(), primary_key=True)
    ark_txid: Mapped[Hex64]


class L2Transaction(Base):
    """An ark transaction this gateway finalized, and when: what settlement periods collect.

    ``settlement_id`` names the settlement holding it, null while none does (or after that
    settlement failed), so finding what is still to be committed is one index range.
    """

    __tablename__ = "l2_transactions"
    __table_args__ = (Index(None, "settlement_id", "finalized_at"),)

    ark_txid: Mapped[Hex64] = mapped_column(primary_key=True)
    finalized_at: Mapped[UnixTime]
    settlement_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("settlements.id"))
