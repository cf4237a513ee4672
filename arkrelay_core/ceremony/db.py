"""Blocking transactions for the engine, run in worker threads.

Each call is one transaction: the function gets an ORM session, and what it adds (state,
challenges, outbox events) commits together or not at all. SQLite allows one writer at a
time and fails a read-then-write transaction that lost the race, so on SQLite this
process runs its transactions one after another; PostgreSQL takes row locks
(``FOR UPDATE``) and runs them in parallel.

A transaction that failed transiently (deadlock victim, serialization failure, lock
timeout, lost connection, SQLite busy) is run again from the start (``store/retry.py``);
that is safe because the function is the whole transaction. :meth:`Store.guard` and
:meth:`Store.supervise` keep a database error that outlasted the retries inside the task
that met it: logged and counted, never the end of the gateway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session, sessionmaker

from ..store.retry import DbErrors, backoff, retrying

__all__ = ["Store"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest pause before a long-lived task that met a database error starts again.
RESTART_MAX = 30.0


class Store:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        limiter: trio.CapacityLimiter,
        *,
        task: str = "engine",
        errors: DbErrors | None = None,
    ) -> None:
        self._sessions = sessions
        self._limiter = limiter
        self.task = task
        self.errors = errors if errors is not None else DbErrors()
        bind = sessions.kw.get("bind")
        self.is_sqlite = bind is not None and bind.dialect.name == "sqlite"
        self._serial = threading.Lock() if self.is_sqlite else None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` in one committed transaction, in a worker thread; retried
        from the start if it failed transiently."""
        return await retrying(
            lambda: trio.to_thread.run_sync(self._run, fn, args, limiter=self._limiter),
            task=self.task,
            errors=self.errors,
        )

    async def guard(self, task: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Await ``fn(*args)``; a database error it raises is logged and counted, not
        propagated: the rows say where the work stands, and the lease keeper, a deadline
        or a restart takes it up again."""
        try:
            await fn(*args)
        except sa.exc.SQLAlchemyError:
            self.errors.count(task)
            log.exception(
                "%s: database error; the task stops here, its rows stay as they are", task
            )

    async def supervise(self, task: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run the long-lived ``fn(*args)``; after a database error, start it again with
        capped, jittered backoff (the error is logged and counted)."""
        failures = 0
        while True:
            began = trio.current_time()
            try:
                await fn(*args)
                return
            except sa.exc.SQLAlchemyError:
                if trio.current_time() - began > RESTART_MAX:
                    failures = 0
                failures += 1
                self.errors.count(task)
                delay = backoff(failures, first=0.5, cap=RESTART_MAX)
                log.exception("%s: database error; starting it again in %.1fs", task, delay)
                await trio.sleep(delay)

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._serial is None:
            return self._transaction(fn, args)
        with self._serial:
            return self._transaction(fn, args)

    def _transaction(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self._sessions() as db, db.begin():
            return fn(db, *args)
