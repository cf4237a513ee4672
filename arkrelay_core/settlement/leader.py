"""Which instance settles: the holder of a PostgreSQL advisory lock, or the only instance.

The lock is session-scoped and lives on a connection kept for that purpose alone, so it
goes away with the process that held it: PostgreSQL drops a dead client's locks when its
connection closes, and a follower polling ``pg_try_advisory_lock`` takes over. The holder
pings its connection; if a ping fails or overruns its deadline the holder stops settling
at once, because it can no longer be sure the lock is still its own.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import sqlalchemy as sa
import trio

__all__ = ["LEADER_LOCK_KEY", "Leadership"]

log = logging.getLogger(__name__)

#: One key for every gateway sharing a database; derived from a name so it never collides
#: with the migration lock by accident.
LEADER_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"arkrelay/settlement-leader").digest()[:8], "big", signed=True
)


class Leadership:
    def __init__(
        self, engine: sa.Engine, *, poll_seconds: float = 2.0, call_timeout: float = 10.0
    ) -> None:
        self._engine = engine
        self.poll_seconds = poll_seconds
        self.call_timeout = call_timeout
        self.shared = engine.dialect.name == "postgresql"
        self._connection: sa.Connection | None = None
        self.is_leader = False
        self.acquisitions = 0

    async def _blocking(self, fn: Any) -> Any:
        # A hung database must not hang leadership: the thread is abandoned at the deadline
        # and its connection is never used again.
        with trio.fail_after(self.call_timeout):
            return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)

    def _try_lock(self) -> bool:
        if self._connection is None:
            self._connection = self._engine.connect()
        got = self._connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}
        ).scalar()
        # Autobegin opened a transaction; end it so the connection is not idle in one.
        self._connection.commit()
        return bool(got)

    def _ping(self) -> None:
        assert self._connection is not None
        self._connection.execute(sa.text("SELECT 1"))
        self._connection.commit()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.invalidate()
            connection.close()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("closing the settlement lock connection failed: %s", exc)

    async def acquire(self) -> None:
        """Return once this instance is the leader."""
        if not self.shared:
            self.is_leader = True
            self.acquisitions += 1
            return
        waiting_logged = False
        while True:
            try:
                if await self._blocking(self._try_lock):
                    self.is_leader = True
                    self.acquisitions += 1
                    log.info("this instance now holds settlement leadership")
                    return
                if not waiting_logged:
                    log.info("another instance holds settlement leadership; waiting")
                    waiting_logged = True
            except (sa.exc.SQLAlchemyError, trio.TooSlowError) as exc:
                log.warning("cannot ask for settlement leadership: %s", exc)
                self._drop()
            await trio.sleep(self.poll_seconds)

    async def watch(self) -> None:
        """Return when leadership can no longer be vouched for (never, on SQLite)."""
        if not self.shared:
            await trio.sleep_forever()
        while True:
            await trio.sleep(self.poll_seconds)
            try:
                await self._blocking(self._ping)
            except (sa.exc.SQLAlchemyError, trio.TooSlowError) as exc:
                log.error("settlement leadership lost (lock connection failed): %s", exc)
                return

    async def release(self) -> None:
        """Give the lock up (closing its connection releases it on the server too)."""
        self.is_leader = False
        if self.shared:
            await trio.to_thread.run_sync(self._drop)
