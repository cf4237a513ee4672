"""flow context on batches and invoices; inbound events kept until handled

Revision: 0002
Parent: 0001
Written: 2026-11-28

A batch's shared ark transaction and a Lightning flow's progress (which VTXO was sent,
which payment is in flight) are kept with the row they belong to, so that a restarted
gateway resumes from the database alone. An inbound event is kept whole until it has
been handled, so one that arrived just before a crash is not lost to deduplication.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    for table in ("batches", "invoices"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("context", JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("events_in") as batch:
        batch.add_column(sa.Column("event", JSON, nullable=True))
        batch.add_column(sa.Column("handler", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("handled_at", sa.BigInteger(), nullable=True))
        batch.create_index(batch.f("ix_events_in_handled_at"), ["handled_at"])


def downgrade() -> None:
    with op.batch_alter_table("events_in") as batch:
        batch.drop_index(batch.f("ix_events_in_handled_at"))
        batch.drop_column("handled_at")
        batch.drop_column("handler")
        batch.drop_column("event")
    for table in ("invoices", "batches"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("context")
