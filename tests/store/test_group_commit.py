"""The SQLite writer commits many callers' transactions together, and each caller still
sees its own transaction: rolled back alone when it raises, answered only after COMMIT,
run again when the batch met a transient error."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import sqlalchemy as sa
import trio
import trio.testing
from sqlalchemy.orm import DeclarativeBase

from arkrelay_core.store import create_engine_for, session_factory
from arkrelay_core.store.groupcommit import GroupCommit, OneEach
from arkrelay_core.store.transactions import Store

_META = sa.MetaData()
_ROWS = sa.Table("rows", _META, sa.Column("n", sa.Integer, primary_key=True))


@pytest.fixture
def engine(tmp_path):
    engine = create_engine_for(f"sqlite:///{tmp_path / 'writer.db'}")
    _META.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine) -> Store:
    return Store(session_factory(engine), trio.CapacityLimiter(2))


def _insert(db, n: int) -> int:
    db.execute(sa.insert(_ROWS).values(n=n))
    return n


def _stored(engine) -> list[int]:
    with engine.connect() as db:
        return list(db.scalars(sa.select(_ROWS.c.n).order_by(_ROWS.c.n)))


class _Gate:
    """A job that holds the writer until released: what queues meanwhile is one batch."""

    def __init__(self) -> None:
        self.entered = trio.Event()
        self._open = threading.Event()

    def job(self, db) -> None:
        trio.from_thread.run_sync(self.entered.set)
        self._open.wait()

    def release(self) -> None:
        self._open.set()


async def _batch_behind_gate(store: Store, jobs) -> list[object]:
    """Run ``jobs`` (fn, args) as one batch, in this order; each result or the exception
    it raised."""
    gate = _Gate()
    results: list[object] = [None] * len(jobs)

    async def call(i: int, fn, args) -> None:
        try:
            results[i] = await store.run(fn, *args)
        except (ValueError, sa.exc.SQLAlchemyError) as exc:
            results[i] = exc

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.run, gate.job)
            await gate.entered.wait()
            for i, (fn, args) in enumerate(jobs):
                nursery.start_soon(call, i, fn, args)
                await trio.testing.wait_all_tasks_blocked()  # queued in this order
            gate.release()
    return results


@pytest.mark.postgres
def test_sqlite_gets_the_group_commit_writer_and_postgres_a_transaction_each(
    engine, postgres_url
) -> None:
    assert isinstance(Store(session_factory(engine), trio.CapacityLimiter(1)).writer, GroupCommit)
    other = create_engine_for(postgres_url)
    try:
        assert isinstance(Store(session_factory(other), trio.CapacityLimiter(1)).writer, OneEach)
    finally:
        other.dispose()


async def test_a_job_that_raises_rolls_back_only_itself(store, engine) -> None:
    def refused(db, n: int) -> None:
        _insert(db, n)
        raise ValueError("refused")

    results = await _batch_behind_gate(store, [(_insert, (1,)), (refused, (2,)), (_insert, (3,))])
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ValueError)
    assert _stored(engine) == [1, 3]
    assert store.writer.statistics()["largest"] == 3  # one batch, one COMMIT


async def test_a_job_whose_statement_fails_leaves_the_batch_whole(store, engine) -> None:
    results = await _batch_behind_gate(store, [(_insert, (1,)), (_insert, (1,)), (_insert, (2,))])
    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], sa.exc.IntegrityError)
    assert _stored(engine) == [1, 2]


async def test_results_are_handed_back_only_after_the_commit(store, engine) -> None:
    seen: list[list[int]] = []

    async def call(n: int) -> None:
        await store.run(_insert, n)
        seen.append(_stored(engine))  # another connection: only committed rows show

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(call, n)
    assert len(seen) == 20
    assert all(len(rows) >= i + 1 for i, rows in enumerate(seen))


async def test_a_transient_error_runs_the_whole_batch_again(store, engine) -> None:
    tries: list[int] = []

    def busy_once(db, n: int) -> int:
        tries.append(n)
        _insert(db, n)
        if tries.count(n) == 1:
            raise sa.exc.OperationalError(
                "commit", {}, sqlite3.OperationalError("database is locked")
            )
        return n

    def counted(db, n: int) -> int:
        tries.append(n)
        return _insert(db, n)

    results = await _batch_behind_gate(store, [(counted, (1,)), (busy_once, (2,))])
    assert results == [1, 2]
    assert _stored(engine) == [1, 2]
    # The first job's work went with the failed batch: it ran again, and its caller was
    # answered only after the batch that kept it committed.
    assert tries.count(1) == 2 and tries.count(2) == 2
    assert store.errors.snapshot() == {"engine": 2}


async def test_many_concurrent_callers_each_get_their_own_result(store, engine) -> None:
    results: dict[int, int] = {}

    async def call(n: int) -> None:
        results[n] = await store.run(_insert, n)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for n in range(300):
                nursery.start_soon(call, n)
    assert results == {n: n for n in range(300)}
    assert _stored(engine) == list(range(300))
    stats = store.writer.statistics()
    assert stats["jobs"] == 300 and stats["batches"] < 300


async def test_a_queued_caller_that_is_cancelled_is_withdrawn(store, engine) -> None:
    gate = _Gate()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.run, gate.job)
            await gate.entered.wait()
            scope = trio.CancelScope()

            async def withdrawn() -> None:
                with scope:
                    await store.run(_insert, 1)

            nursery.start_soon(withdrawn)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(store.run, _insert, 2)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            gate.release()
    assert _stored(engine) == [2]
    assert await store.run(_insert, 3) == 3  # the writer goes on


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __table__ = _ROWS


async def test_orm_objects_a_job_returns_stay_readable_after_its_batch(store) -> None:
    def add(db, n: int) -> _Row:
        row = _Row(n=n)
        db.add(row)
        return row

    def refused(db) -> None:
        db.add(_Row(n=9))
        db.flush()
        raise ValueError("refused")

    results = await _batch_behind_gate(store, [(add, (5,)), (refused, ()), (add, (6,))])
    assert [row.n for row in (results[0], results[2])] == [5, 6]
    assert isinstance(results[1], ValueError)
