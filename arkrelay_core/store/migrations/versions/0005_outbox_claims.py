"""outbox rows claimed by the instance publishing them

Revision: 0005
Parent: 0004
Written: 2026-12-07

Two instances publishing from one outbox updated the same rows in opposite orders and
deadlocked (issue #17). A publisher now claims the rows it sends (``claimed_by``, with
``next_attempt_at`` pushed to when the claim lapses); the other instance skips them, and
takes them over if the claim lapses unrecorded. At start an instance takes back its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
