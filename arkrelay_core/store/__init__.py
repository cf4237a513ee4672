"""Persistence: SQLAlchemy 2 models, engines for SQLite and PostgreSQL, Alembic migrations,
and whole-database backup and restore.

The table classes live in :mod:`arkrelay_core.store.models`.
"""

from __future__ import annotations

from .backup import BackupError, DatabaseCopy, backup_database, restore_database
from .engine import create_engine_for, mask_url, session_factory
from .errors import StoreError
from .migrate import Migration, current, downgrade, head, history, upgrade
from .models import Base

__all__ = [
    "BackupError",
    "Base",
    "DatabaseCopy",
    "Migration",
    "StoreError",
    "backup_database",
    "create_engine_for",
    "current",
    "downgrade",
    "head",
    "history",
    "mask_url",
    "restore_database",
    "session_factory",
    "upgrade",
]
