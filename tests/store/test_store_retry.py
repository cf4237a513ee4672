"""Transient database errors are run again as whole transactions; others are not.

Faults are real: a row lock another connection holds past ``lock_timeout``, a backend the
server terminates mid-transaction, a missing table.
"""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
import trio

from arkrelay_core.ceremony.db import Store
from arkrelay_core.nostr import generate_secret_key, sign_event
from arkrelay_core.outbox import enqueue
from arkrelay_core.store import create_engine_for, session_factory, upgrade
from arkrelay_core.store.models import OutboxEvent
from arkrelay_core.store.retry import ATTEMPTS, is_transient


@pytest.fixture
def engine(postgres_url):
    upgrade(postgres_url)
    engine = create_engine_for(postgres_url)
    yield engine
    engine.dispose()


def _one_row(engine) -> int:
    sessions = session_factory(engine)
    with sessions() as db:
        enqueue(db, sign_event(generate_secret_key(), kind=31340, content="", tags=[]))
        db.commit()
        return db.scalar(sa.select(OutboxEvent.id))


@pytest.mark.postgres
async def test_a_lock_wait_past_lock_timeout_is_run_again_until_it_succeeds(engine) -> None:
    row = _one_row(engine)
    store = Store(session_factory(engine), trio.CapacityLimiter(2))
    tries = []

    def touch(db, row_id):
        tries.append(row_id)
        db.execute(sa.text("set local lock_timeout = '100ms'"))
        db.execute(sa.update(OutboxEvent).where(OutboxEvent.id == row_id).values(last_error="me"))
        return len(tries)

    holder = engine.connect()
    try:
        holder.execute(sa.update(OutboxEvent).where(OutboxEvent.id == row).values(last_error="x"))
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                result: list[int] = []

                async def run() -> None:
                    result.append(await store.run(touch, row))

                nursery.start_soon(run)
                while store.errors.snapshot().get("engine", 0) < 2:  # noqa: ASYNC110
                    await trio.sleep(0.02)
                holder.commit()  # the lock goes; the next try gets the row
    finally:
        holder.close()
    assert result == [len(tries)] and len(tries) >= 3
    assert store.errors.snapshot()["engine"] == len(tries) - 1
    with engine.connect() as db:
        assert db.scalar(sa.select(OutboxEvent.last_error)) == "me"


@pytest.mark.postgres
async def test_a_connection_the_server_closed_mid_transaction_is_run_again(engine) -> None:
    store = Store(session_factory(engine), trio.CapacityLimiter(2), task="settlement")
    tries = []

    def killed_once(db):
        pid = db.scalar(sa.text("select pg_backend_pid()"))
        tries.append(pid)
        if len(tries) == 1:
            with engine.connect() as admin:
                admin.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})
        return db.scalar(sa.text("select 41 + 1"))

    assert await store.run(killed_once) == 42
    assert len(tries) == 2 and tries[0] != tries[1]
    assert store.errors.snapshot() == {"settlement": 1}


@pytest.mark.postgres
async def test_a_persistent_lock_conflict_gives_up_after_the_bounded_tries(engine) -> None:
    row = _one_row(engine)
    store = Store(session_factory(engine), trio.CapacityLimiter(2))

    def touch(db):
        db.execute(sa.text("set local lock_timeout = '20ms'"))
        db.execute(sa.update(OutboxEvent).where(OutboxEvent.id == row).values(last_error="me"))

    holder = engine.connect()
    try:
        holder.execute(sa.update(OutboxEvent).where(OutboxEvent.id == row).values(last_error="x"))
        with pytest.raises(sa.exc.OperationalError) as raised:
            await store.run(touch)
    finally:
        holder.close()
    assert raised.value.orig.sqlstate == "55P03"  # lock_not_available
    assert store.errors.snapshot() == {"engine": ATTEMPTS - 1}


@pytest.mark.postgres
async def test_an_error_that_is_not_transient_is_not_run_again(engine) -> None:
    store = Store(session_factory(engine), trio.CapacityLimiter(2))
    tries = []

    def broken(db):
        tries.append(1)
        db.execute(sa.text("select * from no_such_table"))

    with pytest.raises(sa.exc.ProgrammingError):
        await store.run(broken)
    assert tries == [1] and store.errors.snapshot() == {}


@pytest.mark.postgres
async def test_supervise_starts_a_task_again_after_a_database_error(engine) -> None:
    store = Store(session_factory(engine), trio.CapacityLimiter(2))
    rounds = []

    async def loop() -> None:
        rounds.append(1)
        if len(rounds) == 1:
            await store.run(lambda db: db.execute(sa.text("select * from no_such_table")))
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.supervise, "leases", loop)
            while len(rounds) < 2:  # noqa: ASYNC110
                await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    assert store.errors.snapshot() == {"leases": 1}


def test_sqlite_busy_is_transient_and_a_constraint_is_not(tmp_path) -> None:
    path = tmp_path / "busy.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("create table t (x integer primary key)")
    writer.execute("begin immediate")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    try:
        with pytest.raises(sa.exc.OperationalError) as busy, engine.begin() as db:
            db.execute(sa.text("insert into t values (1)"))
        writer.execute("commit")
        with engine.begin() as db:
            db.execute(sa.text("insert into t values (1)"))
        with pytest.raises(sa.exc.IntegrityError) as duplicate, engine.begin() as db:
            db.execute(sa.text("insert into t values (1)"))
    finally:
        writer.close()
        engine.dispose()
    assert is_transient(busy.value)
    assert not is_transient(duplicate.value)
