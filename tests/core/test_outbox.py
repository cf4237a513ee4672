"""The durable outbox: persisted first, published until enough relays accept, never lost."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import trio

from arkrelay_core.config import Duration, OutboxSettings
from arkrelay_core.interfaces import PublishResult
from arkrelay_core.nostr import generate_secret_key, sign_event
from arkrelay_core.outbox import OutboxPublisher, enqueue
from arkrelay_core.store import create_engine_for, session_factory, upgrade
from arkrelay_core.store.models import OutboxEvent

FAST = OutboxSettings(retry_initial=Duration(0.2), retry_max=Duration(1))
KEY = generate_secret_key()


class Relay:
    """An in-process transport whose answer the test decides."""

    features = frozenset()

    def __init__(self, name: str, answer: str = "accept") -> None:
        self.name = name
        self.answer = answer
        self.seen: list[str] = []

    async def serve(self, inbound, *, task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()

    async def publish(self, event):
        self.seen.append(event.id)
        if self.answer == "raise":
            raise ConnectionResetError("socket gone")
        if self.answer == "reject":
            return PublishResult(rejected={self.name: "blocked: not today"})
        if self.answer == "timeout":
            return PublishResult(timed_out=(self.name,))
        return PublishResult(accepted=(self.name,))

    def statistics(self):
        return {}


@pytest.fixture
def sessions(db_url):
    upgrade(db_url)
    engine = create_engine_for(db_url)
    yield session_factory(engine)
    engine.dispose()


def _event(n: int):
    return sign_event(KEY, kind=31340, content=f"{n}", tags=[["d", f"a{n}"]])


def _queue(sessions, *events) -> None:
    with sessions() as session:
        for event in events:
            enqueue(session, event)
        session.commit()


def _rows(sessions):
    with sessions() as session:
        return session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id)).all()


class Published:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self._lot = trio.lowlevel.ParkingLot()

    def __call__(self, event) -> None:
        self.ids.append(event.id)
        self._lot.unpark_all()

    async def wait_for(self, count: int) -> None:
        while len(self.ids) < count:
            await self._lot.park()


async def _run(publisher, until):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(publisher.serve)
            await until()
            nursery.cancel_scope.cancel()


async def test_acked_once_enough_relays_accepted(sessions):
    a, b = Relay("wss://a"), Relay("wss://b")
    published = Published()
    publisher = OutboxPublisher(
        sessions,
        {"a": a, "b": b},
        OutboxSettings(min_accepts=2),
        on_published=published,
    )
    event = _event(1)
    _queue(sessions, event)
    await _run(publisher, lambda: published.wait_for(1))
    [row] = _rows(sessions)
    assert row.acked_at is not None
    assert sorted(row.accepted_relays) == ["wss://a", "wss://b"]
    assert (a.seen, b.seen, published.ids) == ([event.id], [event.id], [event.id])


async def test_retried_with_backoff_until_a_relay_accepts_then_never_again(sessions):
    relay = Relay("wss://a", answer="reject")
    published = Published()
    publisher = OutboxPublisher(sessions, {"a": relay}, FAST, on_published=published)
    event = _event(2)
    _queue(sessions, event)

    async def scenario():
        # The relay sees the second send before the publisher records it: wait for both.
        while len(relay.seen) < 2 or _rows(sessions)[0].attempts < 2:  # noqa: ASYNC110
            await trio.sleep(0.05)
        [row] = _rows(sessions)
        assert (row.acked_at, row.last_error) == (None, "wss://a: blocked: not today")
        assert row.attempts >= 2
        relay.answer = "accept"
        await published.wait_for(1)
        seen = len(relay.seen)
        await trio.sleep(1.5)  # long past any retry: an acked event is not sent again
        assert len(relay.seen) == seen

    await _run(publisher, scenario)
    [row] = _rows(sessions)
    assert row.acked_at is not None and row.last_error is None
    assert publisher.statistics()["published"] == 1


async def test_a_restarted_publisher_sends_what_was_committed_before(sessions):
    events = [_event(n) for n in range(3)]
    _queue(sessions, *events)  # committed; the process that did it is gone
    relay = Relay("wss://a")
    published = Published()
    publisher = OutboxPublisher(sessions, {"a": relay}, FAST, on_published=published)
    await _run(publisher, lambda: published.wait_for(3))
    assert sorted(relay.seen) == sorted(e.id for e in events)
    assert all(row.acked_at is not None for row in _rows(sessions))


async def test_a_failing_transport_does_not_stop_the_others(sessions, caplog):
    broken, slow, good = Relay("x", "raise"), Relay("wss://t", "timeout"), Relay("wss://g")
    published = Published()
    publisher = OutboxPublisher(
        sessions, {"x": broken, "t": slow, "g": good}, FAST, on_published=published
    )
    _queue(sessions, _event(4))
    await _run(publisher, lambda: published.wait_for(1))
    [row] = _rows(sessions)
    assert row.accepted_relays == ["wss://g"]
    assert "transport x failed to publish" in caplog.text


async def test_nothing_is_sent_twice_under_a_new_id(sessions):
    event = _event(5)
    _queue(sessions, event)
    with pytest.raises(sa.exc.IntegrityError):
        _queue(sessions, event)  # the same signed event cannot be queued twice
