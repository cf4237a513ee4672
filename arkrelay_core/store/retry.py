"""Transient database errors: the one place that knows them, retries them and counts them.

Two instances sharing PostgreSQL (or a PostgreSQL restart, or a second SQLite writer) make
some transactions fail through no fault of theirs: a deadlock victim, a serialization
failure, a lock wait that hit ``lock_timeout``, a connection the server closed. Such a
transaction is run again from the start, a bounded number of times with jittered
backoff. Only whole transactions are retried: the function owns its session from
``begin`` to ``commit``, so a failed attempt left nothing behind.

Each failure is counted by task (``arkrelay_db_errors_total{task=...}``): by the retry when
it retries, by the task's own supervision when it gives up.
"""

from __future__ import annotations

import collections
import logging
import random
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import sqlalchemy as sa
import trio

__all__ = ["ATTEMPTS", "DbErrors", "backoff", "is_transient", "retrying"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Tries of one transaction before its error is the caller's (about 5 s of backoff).
ATTEMPTS = 8
_FIRST_DELAY = 0.05
_MAX_DELAY = 2.0

# SQLSTATEs that say "try again": serialization_failure, deadlock_detected,
# lock_not_available, admin_shutdown, crash_shutdown, cannot_connect_now; and class 08,
# connection exceptions (PostgreSQL manual, appendix A "Error Codes").
_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def is_transient(exc: BaseException) -> bool:
    """Whether running the failed transaction again may well succeed."""
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection free in time
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        return any(text in str(orig).lower() for text in _SQLITE_BUSY)
    state = getattr(orig, "sqlstate", None)
    if state is not None:
        return state in _TRANSIENT_STATES or state.startswith("08")
    # psycopg raises OperationalError without a SQLSTATE when the connection itself broke
    # ("server closed the connection unexpectedly", "consuming input failed").
    return isinstance(exc, sa.exc.OperationalError)


def backoff(attempt: int, *, first: float = _FIRST_DELAY, cap: float = _MAX_DELAY) -> float:
    """Seconds to wait after the ``attempt``-th failure: doubling, capped, jittered so
    that two instances that collided do not collide again at the same moment."""
    return min(cap, first * 2 ** min(attempt - 1, 30)) * random.uniform(0.5, 1.0)


class DbErrors:
    """Database errors met, by task; read by ``/metrics``."""

    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()

    def count(self, task: str) -> None:
        self._counts[task] += 1

    def snapshot(self) -> Mapping[str, int]:
        return dict(self._counts)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    task: str,
    errors: DbErrors | None = None,
    attempts: int | None = ATTEMPTS,
) -> T:
    """Await ``attempt()`` (one whole transaction) until it does not fail transiently.

    After ``attempts`` tries (never, if None) the last error is raised; any other error
    is raised at once. The wait between tries is a trio sleep, so no worker thread or
    database connection is held meanwhile.
    """
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
            if not is_transient(exc) or (attempts is not None and tries >= attempts):
                raise
            delay = backoff(tries)
            if errors is not None:
                errors.count(task)
            log.warning(
                "%s: transient database error (try %d), running the transaction again in %.2fs: %s",
                task,
                tries,
                delay,
                _first_line(exc),
            )
            await trio.sleep(delay)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
