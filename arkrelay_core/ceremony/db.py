"""Blocking transactions for the engine, run in worker threads.

Each call is one transaction: the function gets an ORM session, and what it adds (state,
challenges, outbox events) commits together or not at all. SQLite allows one writer at a
time and fails a read-then-write transaction that lost the race, so on SQLite this
process runs its transactions one after another; PostgreSQL takes row locks
(``FOR UPDATE``) and runs them in parallel.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import trio
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Store"]

T = TypeVar("T")


class Store:
    def __init__(self, sessions: sessionmaker[Session], limiter: trio.CapacityLimiter) -> None:
        self._sessions = sessions
        self._limiter = limiter
        bind = sessions.kw.get("bind")
        self.is_sqlite = bind is not None and bind.dialect.name == "sqlite"
        self._serial = threading.Lock() if self.is_sqlite else None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` in one committed transaction, in a worker thread."""
        return await trio.to_thread.run_sync(self._run, fn, args, limiter=self._limiter)

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._serial is None:
            return self._transaction(fn, args)
        with self._serial:
            return self._transaction(fn, args)

    def _transaction(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self._sessions() as db, db.begin():
            return fn(db, *args)
