"""Durable outbound events: persisted first, published until enough relays accept them.

A state change and the events it causes are committed in one transaction
(:func:`enqueue` adds to the caller's session). The publisher then sends every
unacknowledged event through every transport until ``min_accepts`` relays have accepted
it, retrying with capped exponential backoff, across restarts: a crash loses no event,
and since the event is signed once and stored, a retry never sends it with another id.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session, sessionmaker

from .config import OutboxSettings
from .interfaces import PublishResult, Transport
from .nostr import Event
from .store.models import OutboxEvent

__all__ = ["OutboxPublisher", "enqueue"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


def enqueue(session: Session, event: Event, *, now: float | None = None) -> None:
    """Add ``event`` to the outbox in the caller's transaction (it commits it)."""
    moment = int(time.time() if now is None else now)
    session.add(
        OutboxEvent(
            event_id=event.id,
            kind=event.kind,
            event=msgspec.to_builtins(event),
            created_at=moment,
            next_attempt_at=moment,
            attempts=0,
            accepted_relays=[],
        )
    )


#: Seconds between two counts of the backlog (a statistic; counting scans the outbox).
BACKLOG_EVERY = 1.0


class _Due(msgspec.Struct, frozen=True):
    row_id: int
    event: Event
    attempts: int
    accepted: tuple[str, ...]


class _Attempt(msgspec.Struct, frozen=True):
    item: _Due
    accepted: list[str]
    done: bool
    error: str | None


class OutboxPublisher:
    """Publishes what the outbox holds; run ``serve`` in the gateway's nursery."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        transports: Mapping[str, Transport],
        settings: OutboxSettings,
        *,
        on_published: Callable[[Event], None] | None = None,
        clock: Clock = time.time,
        db_limiter: trio.CapacityLimiter | None = None,
    ) -> None:
        self._sessions = sessions
        self._transports = dict(transports)
        self._settings = settings
        self._on_published = on_published
        self._clock = clock
        self._db = db_limiter or trio.CapacityLimiter(1)
        self._wake = trio.Event()
        self._stats = {"published": 0, "attempts": 0, "retries_scheduled": 0, "backlog": 0}
        self._last_error: str | None = None
        self._backlog_counted_at = -math.inf

    def notify(self) -> None:
        """Something was enqueued (and committed): look at the outbox now."""
        self._wake.set()

    def statistics(self) -> Mapping[str, Any]:
        return {**self._stats, "last_error": self._last_error}

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._wake = trio.Event()
            due, next_at = await trio.to_thread.run_sync(self._load_due, limiter=self._db)
            if due:
                await self._publish_batch(due)
                continue
            # Sleep until the earliest retry is due, or until something is enqueued.
            timeout = float("inf") if next_at is None else max(0.0, next_at - self._clock())
            with trio.move_on_after(timeout):
                await self._wake.wait()

    def _load_due(self) -> tuple[list[_Due], float | None]:
        now = self._clock()
        pending = sa.select(OutboxEvent).where(OutboxEvent.acked_at.is_(None))
        with self._sessions() as session:
            rows = session.scalars(
                pending.where(OutboxEvent.next_attempt_at <= now)
                .order_by(OutboxEvent.id)
                .limit(self._settings.concurrency * 4)
            ).all()
            if now - self._backlog_counted_at >= BACKLOG_EVERY:
                self._backlog_counted_at = now
                self._stats["backlog"] = session.scalar(
                    sa.select(sa.func.count()).select_from(pending.subquery())
                )
            # Only an idle publisher needs to know when the next retry falls due.
            next_at = None
            if not rows:
                next_at = session.scalar(
                    sa.select(sa.func.min(OutboxEvent.next_attempt_at)).where(
                        OutboxEvent.acked_at.is_(None)
                    )
                )
        due = [
            _Due(r.id, msgspec.convert(r.event, Event), r.attempts, tuple(r.accepted_relays))
            for r in rows
        ]
        return due, None if next_at is None else float(next_at)

    async def _publish_batch(self, due: Sequence[_Due]) -> None:
        limiter = trio.CapacityLimiter(self._settings.concurrency)
        attempts: list[_Attempt] = []

        async def one(item: _Due) -> None:
            async with limiter:
                attempts.append(await self._publish_one(item))

        async with trio.open_nursery() as nursery:
            for item in due:
                nursery.start_soon(one, item)
        # The batch's outcomes in one transaction. Until it commits, a crash only means
        # publishing again what was published: same event, same id.
        await trio.to_thread.run_sync(self._record, attempts, limiter=self._db)
        for attempt in attempts:
            self._stats["attempts"] += 1
            if attempt.done:
                self._stats["published"] += 1
                if self._on_published is not None:
                    self._on_published(attempt.item.event)
            else:
                self._stats["retries_scheduled"] += 1
                self._last_error = attempt.error
                log.warning("event %s not yet published: %s", attempt.item.event.id, attempt.error)

    async def _publish_one(self, item: _Due) -> _Attempt:
        results: dict[str, PublishResult] = {}

        async def through(name: str, transport: Transport) -> None:
            try:
                results[name] = await transport.publish(item.event)
            # A transport's bug must not stop the outbox: the event counts as refused
            # there and is retried; the traceback goes to the log.
            except Exception as exc:
                log.exception("transport %s failed to publish %s", name, item.event.id)
                results[name] = PublishResult(rejected={name: f"error: {exc!r}"})

        async with trio.open_nursery() as nursery:
            for name, transport in self._transports.items():
                nursery.start_soon(through, name, transport)

        accepted = set(item.accepted)
        problems: list[str] = []
        for result in results.values():
            accepted.update(result.accepted)
            problems += [f"{relay}: {reason}" for relay, reason in result.rejected.items()]
            problems += [f"{relay}: timed out" for relay in result.timed_out]
        done = len(accepted) >= self._settings.min_accepts
        error = None if done else ("; ".join(problems) or "no transport accepted it")
        return _Attempt(item, sorted(accepted), done, error)

    def _record(self, attempts: Sequence[_Attempt]) -> None:
        now = self._clock()
        acked: list[dict[str, Any]] = []
        retried: list[dict[str, Any]] = []
        for attempt in attempts:
            count = attempt.item.attempts + 1
            values = {"row": attempt.item.row_id, "n": count, "relays": attempt.accepted}
            if attempt.done:
                acked.append(values)
            else:
                # Rounded up: a retry is never due again in the same second it failed.
                retry_at = math.ceil(now + self._backoff(count))
                retried.append(values | {"retry_at": retry_at, "error": attempt.error})
        table = OutboxEvent.__table__
        update = sa.update(table).where(table.c.id == sa.bindparam("row"))
        common = {"attempts": sa.bindparam("n"), "accepted_relays": sa.bindparam("relays")}
        with self._sessions() as session, session.begin():
            if acked:
                session.execute(update.values(**common, acked_at=int(now), last_error=None), acked)
            if retried:
                session.execute(
                    update.values(
                        **common,
                        next_attempt_at=sa.bindparam("retry_at"),
                        last_error=sa.bindparam("error"),
                    ),
                    retried,
                )

    def _backoff(self, attempts: int) -> float:
        base = self._settings.retry_initial.seconds * 2 ** min(attempts - 1, 30)
        capped = min(self._settings.retry_max.seconds, base)
        # Jitter spreads the retries of many events that failed together.
        return capped * random.uniform(0.8, 1.0)
