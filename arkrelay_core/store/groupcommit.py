"""Group commit: the transactions of many callers committed together, one worker thread
hop and one COMMIT per batch.

SQLite has one writer at a time, and per transaction the fixed costs (a thread hand-off,
BEGIN, COMMIT, an ORM session) outweigh the statements. So on SQLite the callers' jobs
queue up, and one of the waiting callers at a time (the leader) runs whatever has queued
(at most :data:`MAX_BATCH`) in ONE worker-thread call, in ONE transaction: each job in a
SAVEPOINT of its own, with an ORM session of its own bound to the batch's connection.
A job that raises rolls back its SAVEPOINT only, and its caller gets the exception; the
others go on. Results are handed back only after the batch's COMMIT: no caller acts on
(or lets an event leave for) a write that might still be rolled back. The first caller
to an idle writer runs at once, alone; while it runs, the next batch gathers.

A transient error (busy, lost connection, a failed COMMIT) fails the whole batch: every
job that was not refused on its own gets that error, and each caller's retry
(``store/retry.py``) runs its job again in a later batch. That is safe for the reason
retries are: a job is a whole transaction, and nothing of the failed batch was kept.

Durability is the COMMIT's, as it was per transaction: WAL with ``synchronous=NORMAL``
(``store/engine.py``) keeps every committed batch through a killed process; a power cut
can lose the newest batches (deployments that cannot accept that run PostgreSQL, where
each job commits, and fsyncs, on its own).

Cancellation is the worker thread's: a job taken into a batch runs to its end and its
caller gets the result (the cancellation meets it at its next checkpoint); a job still
queued is withdrawn.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session, sessionmaker

from .engine import WRITER
from .retry import is_transient

__all__ = ["MAX_BATCH", "GroupCommit", "OneEach", "Writer"]

#: Jobs committed together at most: a bound on how long one batch holds the writer (and
#: on how much one failed COMMIT sends back to be run again).
MAX_BATCH = 64


class _Job:
    __slots__ = ("args", "done", "error", "fn", "lead", "taken", "value", "wake")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        #: Set when the job is done, or when its caller is to lead the next batch.
        self.wake = trio.Event()
        self.lead = False
        self.taken = False
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def finish(self, value: Any, error: BaseException | None) -> None:
        self.value, self.error, self.done = value, error, True
        self.wake.set()

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


#: What a job left in the thread: (value, None) or (None, the error it raised).
_Outcome = tuple[Any, BaseException | None]


class GroupCommit:
    """The SQLite writer: jobs of all callers, committed in batches."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        limiter: trio.CapacityLimiter,
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._sessions = sessions
        #: Transactions of the writer begin IMMEDIATE: the write lock taken at BEGIN.
        self._engine: sa.Engine = sessions.kw["bind"].execution_options(**WRITER)
        self._limiter = limiter
        self._max_batch = max_batch
        self._queue: collections.deque[_Job] = collections.deque()
        self._leading = False
        self._stats = {"batches": 0, "jobs": 0, "largest": 0}

    def statistics(self) -> dict[str, int]:
        return dict(self._stats)

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """``fn(db, *args)`` once, in the next batch; its result once that committed."""
        job = _Job(fn, args)
        self._queue.append(job)
        if self._leading:
            await self._wait(job)
        else:
            self._leading = job.lead = True
        if not job.done:
            await self._lead(job)
        return job.unwrap()

    async def _wait(self, job: _Job) -> None:
        try:
            await job.wake.wait()
        except trio.Cancelled:
            if job.done:
                return  # done already: the caller sees the cancellation at its next await
            if not job.taken:
                self._queue.remove(job)
                if job.lead:
                    self._hand_over()
                raise
            # In a batch that is running: like a worker thread, it is not abandoned.
            with trio.CancelScope(shield=True):
                await job.wake.wait()

    async def _lead(self, mine: _Job) -> None:
        """Run batches until ``mine`` has its result, then pass the lead on."""
        try:
            with trio.CancelScope(shield=True):
                while not mine.done:
                    batch = [self._queue.popleft()]
                    while self._queue and len(batch) < self._max_batch:
                        batch.append(self._queue.popleft())
                    for job in batch:
                        job.taken = True
                    try:
                        results = await trio.to_thread.run_sync(
                            self._commit, batch, limiter=self._limiter
                        )
                    except BaseException as exc:
                        # Not a job's error (those are in the results): nobody may be
                        # left waiting for a batch that will never answer.
                        for job in batch:
                            job.finish(None, exc)
                        raise
                    self._stats["batches"] += 1
                    self._stats["jobs"] += len(batch)
                    self._stats["largest"] = max(self._stats["largest"], len(batch))
                    for job, (value, error) in zip(batch, results, strict=True):
                        job.finish(value, error)
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._queue:
            successor = self._queue[0]
            successor.lead = True
            successor.wake.set()
        else:
            self._leading = False

    def _commit(self, batch: Sequence[_Job]) -> list[_Outcome]:
        """In the worker thread: the batch in one transaction, each job in a SAVEPOINT."""
        if len(batch) == 1:  # alone: its own transaction, no SAVEPOINT needed
            return [self._alone(batch[0])]
        results: list[_Outcome] = []
        try:
            with self._engine.connect() as connection, connection.begin():
                for job in batch:
                    value, error = self._one(connection, job)
                    if error is not None and _fails_batch(error):
                        raise error
                    results.append((value, error))
        except sa.exc.SQLAlchemyError as exc:
            # Nothing of the batch was kept. A job refused on its own keeps its error (it
            # would meet it again); the others get the batch's, and are retried if it is
            # transient.
            kept = [(None, error if error is not None else exc) for _, error in results]
            return kept + [(None, exc)] * (len(batch) - len(kept))
        return results

    def _alone(self, job: _Job) -> _Outcome:
        try:
            with self._sessions(bind=self._engine) as db, db.begin():
                return job.fn(db, *job.args), None
        except Exception as exc:  # noqa: BLE001 (the caller gets it, as from its own transaction)
            return None, exc

    def _one(self, connection: sa.Connection, job: _Job) -> _Outcome:
        with self._sessions(bind=connection, join_transaction_mode="create_savepoint") as db:
            try:
                with db.begin():
                    return job.fn(db, *job.args), None
            except Exception as exc:  # noqa: BLE001 (the caller gets it: its SAVEPOINT is undone)
                return None, exc


def _fails_batch(exc: BaseException) -> bool:
    """Whether a job's error means the batch's transaction cannot go on: a transient
    error (the connection broke, the database was busy), or the connection is gone."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return is_transient(exc)


class OneEach:
    """The PostgreSQL writer: each job its own transaction, in parallel worker threads.

    Row locks (``FOR UPDATE``) are held to the COMMIT; batching the jobs of many sessions
    into one transaction would hold them across all of them and let two instances that
    share the database deadlock on rows neither job needs from the other.
    """

    def __init__(self, sessions: sessionmaker[Session], limiter: trio.CapacityLimiter) -> None:
        self._sessions = sessions
        self._limiter = limiter

    def statistics(self) -> dict[str, int]:
        return {}

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return await trio.to_thread.run_sync(self._transaction, fn, args, limiter=self._limiter)

    def _transaction(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        with self._sessions() as db, db.begin():
            return fn(db, *args)


Writer = GroupCommit | OneEach


def writer_for(sessions: sessionmaker[Session], limiter: trio.CapacityLimiter) -> Writer:
    """Group commit on SQLite, a transaction per job on PostgreSQL."""
    bind = sessions.kw.get("bind")
    if bind is not None and bind.dialect.name == "sqlite":
        return GroupCommit(sessions, limiter)
    return OneEach(sessions, limiter)
