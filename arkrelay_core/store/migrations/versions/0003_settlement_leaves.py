"""settlement leaves, the finalized L2 transactions, a settlement's own context

Revision: 0003
Parent: 0002
Written: 2026-12-03

A settlement commits to the ark transactions the gateway finalized in its period; each is
recorded once with its finalization time, and a settlement keeps its leaves in order so
that a proof for any of them can be served later. Ark transactions finalized before this
revision are recovered from the ledger (the earliest VTXO each one created).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("settlements") as batch:
        batch.add_column(sa.Column("context", JSON, nullable=False, server_default="{}"))
    op.create_table(
        "settlement_leaves",
        sa.Column("settlement_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("ark_txid", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name=op.f("fk_settlement_leaves_settlement_id_settlements"),
        ),
        sa.PrimaryKeyConstraint("settlement_id", "position", name=op.f("pk_settlement_leaves")),
    )
    op.create_index(op.f("ix_settlement_leaves_ark_txid"), "settlement_leaves", ["ark_txid"])
    op.create_table(
        "l2_transactions",
        sa.Column("ark_txid", sa.String(length=64), nullable=False),
        sa.Column("finalized_at", sa.BigInteger(), nullable=False),
        sa.Column("settlement_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name=op.f("fk_l2_transactions_settlement_id_settlements"),
        ),
        sa.PrimaryKeyConstraint("ark_txid", name=op.f("pk_l2_transactions")),
    )
    op.create_index(
        op.f("ix_l2_transactions_settlement_id_finalized_at"),
        "l2_transactions",
        ["settlement_id", "finalized_at"],
    )
    op.execute(
        "INSERT INTO l2_transactions (ark_txid, finalized_at) "
        "SELECT ark_txid, MIN(created_at) FROM vtxos WHERE ark_txid IS NOT NULL "
        "GROUP BY ark_txid"
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_l2_transactions_settlement_id_finalized_at"), table_name="l2_transactions"
    )
    op.drop_table("l2_transactions")
    op.drop_index(op.f("ix_settlement_leaves_ark_txid"), table_name="settlement_leaves")
    op.drop_table("settlement_leaves")
    with op.batch_alter_table("settlements") as batch:
        batch.drop_column("context")
