"""The money the gateway tracks: listed assets, coloured VTXOs and Lightning invoices."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, ClientId, Hex64, JsonDoc, UnixTime, VtxoRef, check_in

__all__ = ["INVOICE_DIRECTIONS", "VTXO_STATUSES", "Asset", "Invoice", "Vtxo"]

VTXO_STATUSES: tuple[str, ...] = ("spendable", "pending", "spent", "swept", "expired")
INVOICE_DIRECTIONS: tuple[str, ...] = ("in", "out")


class Asset(Base):
    """An asset the gateway lists; gBTC (``is_gateway_asset``) is 1 unit = 1 sat."""

    __tablename__ = "assets"

    asset_id: Mapped[Hex64] = mapped_column(primary_key=True)
    ticker: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    decimals: Mapped[int] = mapped_column(Integer(), default=0)
    enabled: Mapped[bool] = mapped_column(default=True)
    is_gateway_asset: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[UnixTime]


class Vtxo(Base):
    """A VTXO and its colour: which asset it carries and how many base units."""

    __tablename__ = "vtxos"
    __table_args__ = (
        CheckConstraint(check_in("status", VTXO_STATUSES), name="status"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        Index(None, "owner"),
    )

    vtxo_id: Mapped[VtxoRef] = mapped_column(primary_key=True)
    owner: Mapped[Hex64]
    asset_id: Mapped[Hex64] = mapped_column(ForeignKey("assets.asset_id"))
    amount: Mapped[int] = mapped_column(BigInteger())
    status: Mapped[str] = mapped_column(String(16))
    ark_txid: Mapped[Hex64 | None]
    spent_by: Mapped[Hex64 | None]
    is_inventory: Mapped[bool] = mapped_column(default=False)
    expires_at: Mapped[UnixTime]
    created_at: Mapped[UnixTime]

    asset: Mapped[Asset] = relationship()


class Invoice(Base):
    """A Lightning invoice the gateway issued (``in``, lift) or pays (``out``, land).

    Keyed by payment hash: a payment is credited once however often a stream replays it.
    """

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint(check_in("direction", INVOICE_DIRECTIONS), name="direction"),
        CheckConstraint("amount_sat >= 0", name="amount_sat_not_negative"),
    )

    payment_hash: Mapped[Hex64] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))
    bolt11: Mapped[str]
    amount_sat: Mapped[int] = mapped_column(BigInteger())
    asset_id: Mapped[Hex64] = mapped_column(ForeignKey("assets.asset_id"))
    owner: Mapped[Hex64]
    ref_id: Mapped[ClientId]
    state: Mapped[str] = mapped_column(String(32))
    preimage: Mapped[Hex64 | None]
    expires_at: Mapped[UnixTime]
    created_at: Mapped[UnixTime]
    updated_at: Mapped[UnixTime]
    refund_vtxo_id: Mapped[VtxoRef | None]
    #: Flow progress (the VTXO delivered for a lift, the land's session) for restarts.
    context: Mapped[JsonDoc] = mapped_column(default=dict, server_default="{}")

    asset: Mapped[Asset] = relationship()
