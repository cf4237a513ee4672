"""Durable outbound events: persisted first, published until enough relays accept them.

A state change and the events it causes are committed in one transaction
(:func:`enqueue` adds to the caller's session). The publisher then sends every
unacknowledged event through every transport until ``min_accepts`` relays have accepted
it, retrying with capped exponential backoff, across restarts: a crash loses no event,
and since the event is signed once and stored, a retry never sends it with another id.

Several instances may share one PostgreSQL outbox. A publisher claims the rows it is about
to send (``FOR UPDATE SKIP LOCKED``: rows another transaction holds are left to it) by
writing its instance name and pushing ``next_attempt_at`` to when the claim lapses; the
other instances leave them alone until then, and take them over if this one died before
recording the outcome. Outcomes are recorded with the rows locked in id order, the order
every transaction touching several outbox rows uses, so publishers queue behind each other
instead of deadlocking. At worst (a claim lapsed mid-publish) two instances publish the
same event: same id, harmless. Database errors are retried as transactions
(``store/retry.py``); one that outlasts the retries costs a pause, never the publisher.

The hot path is SQLAlchemy Core with statements built once: :func:`enqueue` is one INSERT
in the caller's transaction, a claim one UPDATE ... RETURNING, a record one executemany.
The publisher's transactions go through the gateway's :class:`Store`, so on SQLite they
are committed together with the ceremonies' (``store/groupcommit.py``).
"""

from __future__ import annotations

import logging
import math
import random
import socket
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
from .store.retry import DbErrors, backoff
from .store.transactions import Store

__all__ = ["OutboxPublisher", "enqueue"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


_TABLE = OutboxEvent.__table__
_INSERT = sa.insert(_TABLE)
_PENDING = _TABLE.c.acked_at.is_(None)
_BACKLOG = sa.select(sa.func.count()).select_from(_TABLE).where(_PENDING)
_NEXT_DUE = sa.select(sa.func.min(_TABLE.c.next_attempt_at)).where(_PENDING)


def enqueue(session: Session, event: Event, *, now: float | None = None) -> None:
    """Add ``event`` to the outbox in the caller's transaction (it commits it)."""
    moment = int(time.time() if now is None else now)
    # Core, not the ORM's unit of work: nothing reads the row back in this transaction.
    session.connection().execute(
        _INSERT,
        {
            "event_id": event.id,
            "kind": event.kind,
            "event": msgspec.to_builtins(event),
            "created_at": moment,
            "next_attempt_at": moment,
            "attempts": 0,
            "accepted_relays": [],
        },
    )


def _claim_statement(own_claims_due: bool) -> sa.Update:
    due = _TABLE.c.next_attempt_at <= sa.bindparam("now")
    if own_claims_due:
        due = sa.or_(due, _TABLE.c.claimed_by == sa.bindparam("instance"))
    chosen = (
        sa.select(_TABLE.c.id)
        .where(_PENDING, due)
        .order_by(_TABLE.c.id)
        .limit(sa.bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    return (
        sa.update(_TABLE)
        .where(_TABLE.c.id.in_(chosen))
        .values(claimed_by=sa.bindparam("instance"), next_attempt_at=sa.bindparam("until"))
        .returning(_TABLE.c.id, _TABLE.c.event, _TABLE.c.attempts, _TABLE.c.accepted_relays)
    )


#: Claims of due rows; the first also retakes the rows this instance claimed before a stop.
_CLAIM = {own: _claim_statement(own) for own in (False, True)}
# Only rows still pending: an instance whose claim lapsed must not undo the
# acknowledgement another instance recorded meanwhile.
_OUTCOME = sa.update(_TABLE).where(_TABLE.c.id == sa.bindparam("row"), _PENDING)
_COMMON = {
    "attempts": sa.bindparam("n"),
    "accepted_relays": sa.bindparam("relays"),
    "claimed_by": None,
}
_ACKED = _OUTCOME.values(**_COMMON, acked_at=sa.bindparam("now"), last_error=None)
_RETRIED = _OUTCOME.values(
    **_COMMON, next_attempt_at=sa.bindparam("retry_at"), last_error=sa.bindparam("error")
)


#: Seconds between two counts of the backlog (a statistic; counting scans the outbox).
BACKLOG_EVERY = 1.0
#: How long a claim keeps other instances off the rows this one is publishing, unless the
#: gateway says otherwise (it passes ``[ceremony] lease_ttl``: an instance silent that long
#: counts as dead for its sessions too). A batch that takes longer (each transport bounds a
#: publish, 10 s by default, and a batch is at most four rounds of ``concurrency`` events)
#: may be published by another instance as well: the same events, harmless.
CLAIM_SECONDS = 60.0
#: Pause when due rows exist but all were held by other transactions (skipped).
SKIPPED_PAUSE = 0.5
#: Longest pause after a database error outlasted the transaction retries.
ERROR_PAUSE_MAX = 30.0


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
        instance: str | None = None,
        claim_seconds: float = CLAIM_SECONDS,
        db_errors: DbErrors | None = None,
        store: Store | None = None,
    ) -> None:
        self._instance = instance or socket.gethostname()
        self._claim_seconds = claim_seconds
        self._errors = db_errors if db_errors is not None else DbErrors()
        #: Until a claim took every row it could: this instance's own claims, left by a
        #: stop, are due now.
        self._own_claims_due = True
        self._transports = dict(transports)
        self._settings = settings
        self._on_published = on_published
        self._clock = clock
        if store is None:
            store = Store(sessions, db_limiter or trio.CapacityLimiter(1), errors=self._errors)
        self._store = store.for_task("outbox")
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
        failures = 0
        while True:
            self._wake = trio.Event()
            try:
                due, next_at = await self._store.run(self._claim_due, self._clock())
                if due:
                    await self._publish_batch(due)
                    failures = 0
                    continue
            except sa.exc.SQLAlchemyError as exc:
                # Claimed rows stay claimed; they are due again once the claim lapses.
                failures += 1
                self._errors.count("outbox")
                self._last_error = f"database: {exc.__class__.__name__}"
                delay = backoff(failures, first=0.5, cap=ERROR_PAUSE_MAX)
                log.exception("outbox: database error; trying again in %.1fs", delay)
                await trio.sleep(delay)
                continue
            failures = 0
            # Sleep until the earliest retry is due, or until something is enqueued.
            if next_at is None:
                timeout = float("inf")
            else:
                timeout = next_at - self._clock()
                if timeout <= 0:  # due, but another transaction holds those rows
                    timeout = SKIPPED_PAUSE
            with trio.move_on_after(timeout):
                await self._wake.wait()

    def _claim_due(self, session: Session, now: float) -> tuple[list[_Due], float | None]:
        limit = self._settings.concurrency * 4
        db = session.connection()
        rows = sorted(
            db.execute(
                _CLAIM[self._own_claims_due],
                {
                    "now": now,
                    "instance": self._instance,
                    "limit": limit,
                    "until": math.ceil(now + self._claim_seconds),
                },
            ).all()
        )
        if now - self._backlog_counted_at >= BACKLOG_EVERY:
            self._backlog_counted_at = now
            self._stats["backlog"] = db.scalar(_BACKLOG)
        # Only an idle publisher needs to know when the next retry falls due.
        next_at = None if rows else db.scalar(_NEXT_DUE)
        if len(rows) < limit:
            self._own_claims_due = False
        due_items = [
            _Due(row_id, msgspec.convert(event, Event), attempts, tuple(relays))
            for row_id, event, attempts, relays in rows
        ]
        return due_items, None if next_at is None else float(next_at)

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
        await self._store.run(self._record, attempts, self._clock())
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

    def _record(self, session: Session, attempts: Sequence[_Attempt], now: float) -> None:
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
        for values in acked:
            values["now"] = int(now)
        db = session.connection()
        if db.dialect.name != "sqlite":  # SQLite has one writer: nothing to queue behind
            # Locked in id order first: two publishers recording overlapping rows then
            # queue behind each other instead of each holding what the other waits for.
            rows = sorted(a.item.row_id for a in attempts)
            db.execute(
                sa.select(_TABLE.c.id)
                .where(_TABLE.c.id.in_(rows))
                .order_by(_TABLE.c.id)
                .with_for_update()
            )
        if acked:
            db.execute(_ACKED, acked)
        if retried:
            db.execute(_RETRIED, retried)

    def _backoff(self, attempts: int) -> float:
        base = self._settings.retry_initial.seconds * 2 ** min(attempts - 1, 30)
        capped = min(self._settings.retry_max.seconds, base)
        # Jitter spreads the retries of many events that failed together.
        return capped * random.uniform(0.8, 1.0)
