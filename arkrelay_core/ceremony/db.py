"""The engine's transactions: :class:`Store` (``arkrelay_core/store/transactions.py``).

``Store.run(fn, *args)`` runs ``fn(db, *args)`` (``db`` an ORM session) as one logical
transaction that commits or not at all, retried from the start on transient errors.
"""

from __future__ import annotations

from ..store.transactions import RESTART_MAX, Store

__all__ = ["RESTART_MAX", "Store"]
