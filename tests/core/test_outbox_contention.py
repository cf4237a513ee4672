"""Several publishers on one outbox (issue #17): claimed rows, no deadlock, takeover.

Two gateway instances on one PostgreSQL database each run a publisher over the same
outbox. These tests run two publishers (and a rival writer) against a real database.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
import trio

from arkrelay_core.config import OutboxSettings
from arkrelay_core.interfaces import PublishResult
from arkrelay_core.outbox import CLAIM_SECONDS, OutboxPublisher
from arkrelay_core.store import create_engine_for, session_factory, upgrade
from arkrelay_core.store.retry import DbErrors

from .test_outbox import FAST, Published, Relay, _event, _queue, _rows


@pytest.fixture
def pg(postgres_url):
    upgrade(postgres_url)
    engine = create_engine_for(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(db_url):
    upgrade(db_url)
    engine = create_engine_for(db_url)
    yield session_factory(engine)
    engine.dispose()


def _waiting_on_locks(engine) -> int:
    """Backends of this database waiting for a row or table lock right now."""
    with engine.connect() as db:
        return db.scalar(
            sa.text(
                "select count(*) from pg_stat_activity "
                "where datname = current_database() and wait_event_type = 'Lock'"
            )
        )


class InOrder(Relay):
    """Accepts event ``second`` only once ``first`` was accepted, so a publisher holding
    both finishes them in that order (and records them in that order, unless sorted)."""

    def __init__(self, name: str, first: str, second: str) -> None:
        super().__init__(name)
        self._order = (first, second)
        self._first_done = trio.Event()

    async def publish(self, event):
        if event.id == self._order[1]:
            await self._first_done.wait()
        result = await super().publish(event)
        if event.id == self._order[0]:
            self._first_done.set()
        return result


@pytest.mark.postgres
async def test_a_writer_taking_rows_in_the_other_order_never_kills_the_publisher(pg) -> None:
    """The deadlock of issue #17, made to happen: a transaction holds row 2 and then wants
    row 1, while the publisher records row 1 then row 2."""
    sessions = session_factory(pg)
    first, second = _event(1), _event(2)
    _queue(sessions, first, second)
    row_1, row_2 = (row.id for row in _rows(sessions))
    published = Published()
    errors = DbErrors()
    publisher = OutboxPublisher(
        sessions,
        {"a": InOrder("wss://a", first.id, second.id)},
        FAST,
        on_published=published,
        instance="gw-a",
        db_errors=errors,
    )
    rival = pg.connect()
    try:
        # The rival never is the deadlock's victim: PostgreSQL aborts the other side.
        rival.execute(sa.text("set deadlock_timeout = '60s'"))
        rival.execute(sa.text("update outbox set last_error = 'rival' where id = :r"), {"r": row_2})
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(publisher.serve)
                # Either the publisher took row 1 and waits for row 2, or it left row 2
                # (held) alone and is done with row 1.
                while _waiting_on_locks(pg) == 0 and len(published.ids) < 1:  # noqa: ASYNC110
                    await trio.sleep(0.02)
                await trio.to_thread.run_sync(
                    lambda: rival.execute(
                        sa.text("update outbox set last_error = 'rival' where id = :r"),
                        {"r": row_1},
                    )
                )
                await trio.to_thread.run_sync(rival.commit)
                await published.wait_for(2)
                nursery.cancel_scope.cancel()
    finally:
        rival.close()
    assert sorted(published.ids) == sorted([first.id, second.id])
    rows = _rows(sessions)
    assert all(row.acked_at is not None and row.claimed_by is None for row in rows)


class Gate(Relay):
    """Accepts after a short pause; the first publish waits until every gate saw one, so
    the publishers are known to hold their batches at the same time."""

    def __init__(self, name: str, everyone: list[Gate], pause: float) -> None:
        super().__init__(name)
        self._everyone = everyone
        self._pause = pause
        self.opened = trio.Event()

    async def publish(self, event):
        self.opened.set()
        for gate in self._everyone:
            await gate.opened.wait()
        await trio.sleep(self._pause * (int(event.content) % 5))
        return await super().publish(event)


@pytest.mark.postgres
async def test_two_publishers_send_disjoint_claims_and_never_deadlock(pg) -> None:
    sessions = session_factory(pg)
    events = [_event(n) for n in range(60)]
    _queue(sessions, *events)
    gates: list[Gate] = []
    gates += [Gate("wss://a", gates, 0.003), Gate("wss://b", gates, 0.002)]
    published = Published()
    errors = DbErrors()
    settings = OutboxSettings(concurrency=2)  # four rounds of two per claim: 8 rows
    publishers = [
        OutboxPublisher(
            sessions, {"r": gate}, settings, on_published=published, instance=name, db_errors=errors
        )
        for name, gate in zip(("gw-a", "gw-b"), gates, strict=True)
    ]
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for publisher in publishers:
                await nursery.start(publisher.serve)
            await published.wait_for(len(events))
            nursery.cancel_scope.cancel()
    a, b = (set(gate.seen) for gate in gates)
    assert a and b, "both publishers took part"
    assert not a & b, "a row claimed by one publisher was sent by the other"
    assert a | b == {e.id for e in events}
    assert sorted(published.ids) == sorted(e.id for e in events)
    assert all(row.acked_at is not None and row.claimed_by is None for row in _rows(sessions))


class Silent(Relay):
    """Never answers: a publisher using it is stuck mid-batch, its rows claimed."""

    async def publish(self, event):
        self.seen.append(event.id)
        await trio.sleep_forever()
        return PublishResult()


async def _claim_and_die(sessions, instance: str, count: int) -> None:
    relay = Silent("wss://dead")
    publisher = OutboxPublisher(sessions, {"r": relay}, FAST, instance=instance)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(publisher.serve)
            while len(relay.seen) < count:  # noqa: ASYNC110
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()  # killed: nothing recorded, the claims stay


async def test_another_instance_takes_over_claims_once_they_lapse(sessions) -> None:
    events = [_event(n) for n in range(3)]
    _queue(sessions, *events)
    await _claim_and_die(sessions, "gw-a", len(events))
    assert {row.claimed_by for row in _rows(sessions)} == {"gw-a"}

    relay = Relay("wss://b")
    published = Published()
    early = OutboxPublisher(sessions, {"r": relay}, FAST, instance="gw-b", on_published=published)
    with trio.move_on_after(1.5):
        async with trio.open_nursery() as nursery:
            await nursery.start(early.serve)
    assert relay.seen == [], "claimed rows were taken before the claim lapsed"

    later = OutboxPublisher(
        sessions,
        {"r": relay},
        FAST,
        instance="gw-b",
        on_published=published,
        clock=lambda: time.time() + CLAIM_SECONDS + 1,
    )
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(later.serve)
            await published.wait_for(len(events))
            nursery.cancel_scope.cancel()
    assert sorted(relay.seen) == sorted(e.id for e in events)
    assert all(row.acked_at is not None and row.claimed_by is None for row in _rows(sessions))


async def test_a_restarted_instance_takes_back_its_own_claims_at_once(sessions) -> None:
    events = [_event(n) for n in range(3)]
    _queue(sessions, *events)
    await _claim_and_die(sessions, "gw-a", len(events))
    relay = Relay("wss://a")
    published = Published()
    again = OutboxPublisher(sessions, {"r": relay}, FAST, instance="gw-a", on_published=published)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(again.serve)
            await published.wait_for(len(events))
            nursery.cancel_scope.cancel()
    assert sorted(relay.seen) == sorted(e.id for e in events)
