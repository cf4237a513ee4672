"""Errors raised by the persistence layer.

Exception tree::

    StoreError          the database URL, engine or schema cannot be used as asked
        BackupError     a backup or restore was refused or failed (store/backup.py)
"""

from __future__ import annotations

__all__ = ["StoreError"]


class StoreError(Exception):
    """The store cannot do what was asked (bad URL, unsupported backend, migration failure).

    Messages name the database URL with any password masked, never in clear.
    """
