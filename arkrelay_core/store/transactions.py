"""The gateway's transactions: ``Store.run(fn, *args)`` runs ``fn(db, *args)`` as one.

Each call is one logical transaction: the function gets an ORM session, and what it adds
(state, challenges, outbox events) commits together or not at all, and the call returns
only after that commit. SQLite allows one writer at a time, so there every Store sharing
a writer hands its jobs to one group-commit writer (``store/groupcommit.py``): many
callers' transactions in one worker-thread call and one COMMIT, each in a SAVEPOINT of
its own. PostgreSQL takes row locks (``FOR UPDATE``) and runs each job as its own
transaction, in parallel.

A transaction that failed transiently (deadlock victim, serialization failure, lock
timeout, lost connection, SQLite busy) is run again from the start (``store/retry.py``);
that is safe because the function is the whole transaction. :meth:`Store.guard` and
:meth:`Store.supervise` keep a database error that outlasted the retries inside the task
that met it: logged and counted, never the end of the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session, sessionmaker

from .groupcommit import Writer, writer_for
from .retry import ATTEMPTS, DbErrors, backoff, retrying

__all__ = ["RESTART_MAX", "Store"]

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
        writer: Writer | None = None,
        attempts: int | None = ATTEMPTS,
    ) -> None:
        self._sessions = sessions
        self._limiter = limiter
        self.task = task
        self.errors = errors if errors is not None else DbErrors()
        bind = sessions.kw.get("bind")
        self.is_sqlite = bind is not None and bind.dialect.name == "sqlite"
        self.writer = writer if writer is not None else writer_for(sessions, limiter)
        self._attempts = attempts

    def for_task(self, task: str, *, attempts: int | None = ATTEMPTS) -> Store:
        """A Store for another task (its errors counted under that name) sharing this
        one's writer: on SQLite all of a process's writes should meet in one writer."""
        return Store(
            self._sessions,
            self._limiter,
            task=task,
            errors=self.errors,
            writer=self.writer,
            attempts=attempts,
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` in one committed transaction; retried from the start if it
        failed transiently. Returns once the transaction committed."""
        run = self.writer.run
        result: T = await retrying(
            lambda: run(fn, args), task=self.task, errors=self.errors, attempts=self._attempts
        )
        return result

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
