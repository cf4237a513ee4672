"""sessions indexed by author and state

Revision: 0004
Parent: 0003
Written: 2026-12-03

Every intent counts its author's open sessions and reads the inputs they hold; without
this index both scanned every session row ever written, so opening a session grew slower
with the life of the database.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.create_index(batch.f("ix_sessions_author_state"), ["author", "state"])


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index(batch.f("ix_sessions_author_state"))
