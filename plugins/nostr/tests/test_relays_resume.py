"""Where a relay subscription resumes after a restart: never past an event the core has not
recorded. Units of the point itself, then a pool on a real nostr-relay stopped with an
event taken but not recorded, and started again as a new process would be."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import trio
from arkrelay_nostr.relays import RelayPoolTransport
from arkrelay_nostr.relays.pool import RESUME_FILE
from arkrelay_nostr.relays.resume import MAX_PENDING, ResumeFile, ResumePoint

from arkrelay_core.config import Duration
from arkrelay_core.interfaces import InboundEvent, Receipt
from arkrelay_core.nostr import generate_secret_key

from .relay_process import NostrRelay
from .test_relays_pool import (
    make_context,
    make_settings,
    pubkey,
    relay_stats,
    wait_until,
    wallet_event,
    wallet_publish,
)

NOW = 1_700_000_000.0


def recorded() -> Receipt:
    receipt = Receipt()
    receipt.settle(True)
    return receipt


def live_point(start: int = 100) -> ResumePoint:
    point = ResumePoint(start)
    point.subscribed(0)
    point.caught_up()
    return point


def test_live_events_move_the_point_only_over_what_is_recorded_oldest_first() -> None:
    point = live_point()
    first, second = Receipt(), Receipt()
    point.taken(110, first, now=NOW)
    point.taken(120, second, now=NOW)
    second.settle(True)
    assert not point.advance()
    assert point.recorded == 100  # 110 is not recorded: a restart must ask for it again
    first.settle(True)
    assert point.advance()
    assert point.recorded == 120


def test_a_catch_up_counts_only_once_all_of_it_is_recorded() -> None:
    point = ResumePoint(100)
    point.subscribed(0)
    newest, older = Receipt(), Receipt()
    point.taken(150, newest, now=NOW)  # relays send stored events newest first
    point.taken(130, older, now=NOW)
    newest.settle(True)
    point.advance()
    assert point.recorded == 100
    point.caught_up()
    point.advance()
    assert point.recorded == 100  # 130 is still on its way
    older.settle(True)
    point.advance()
    assert point.recorded == 150
    assert point.pending == 0


def test_an_event_the_core_did_not_record_holds_the_point_back() -> None:
    point = live_point()
    refused = Receipt()
    refused.settle(False)
    point.taken(110, refused, now=NOW)
    point.taken(120, recorded(), now=NOW)
    point.advance()
    assert point.recorded == 100


def test_a_resubscription_that_asks_again_releases_what_was_not_recorded() -> None:
    point = live_point()
    lost = Receipt()
    point.taken(110, lost, now=NOW)
    point.taken(120, recorded(), now=NOW)
    lost.settle(False)  # its hand-over was cancelled (the transport restarted)
    point.subscribed(since=111)  # this REQ does not reach back to it: it still holds
    point.caught_up()
    point.advance()
    assert point.recorded == 100
    point.subscribed(since=105)  # this one does: the copy it brings counts instead
    again = Receipt()
    point.taken(110, again, now=NOW)
    point.caught_up()
    point.advance()
    assert point.recorded == 100
    again.settle(True)
    point.advance()
    assert point.recorded == 120


def test_behind_an_event_never_recorded_the_point_stops_and_memory_stays_bounded() -> None:
    point = live_point()
    point.taken(110, Receipt(), now=NOW)  # never settled
    for i in range(MAX_PENDING + 10):
        point.taken(120 + i, recorded(), now=NOW)
    assert point.pending <= MAX_PENDING
    point.advance()
    assert point.recorded == 100


def test_a_created_at_in_the_future_moves_the_point_only_to_now() -> None:
    point = live_point()
    point.taken(int(NOW) + 10_000, recorded(), now=NOW)
    point.advance()
    assert point.recorded == int(NOW)


def test_the_file_keeps_points_and_a_damaged_one_is_no_points(tmp_path: Path) -> None:
    file = ResumeFile(tmp_path / RESUME_FILE)
    assert file.load() == {}
    file.save({"wss://a": 10, "wss://b": 20})
    assert ResumeFile(file.path).load() == {"wss://a": 10, "wss://b": 20}
    file.path.write_text('{"wss://a": "ten", "wss://b": 20, "wss://c": true}')
    assert file.load() == {"wss://b": 20}
    file.path.write_text("{not json")
    assert file.load() == {}


async def take(receive: trio.MemoryReceiveChannel[InboundEvent], event_id: str) -> InboundEvent:
    async for item in receive:
        if item.event.id == event_id:
            return item
    raise AssertionError("channel closed")


async def run_pool(
    transport: RelayPoolTransport,
    body: Callable[[trio.MemoryReceiveChannel[InboundEvent]], object],
) -> None:
    send, receive = trio.open_memory_channel[InboundEvent](100)
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.serve, send)
        await wait_until(lambda: relay_stats(transport, transport.relays[0])["live"])
        await body(receive)  # type: ignore[misc]
        nursery.cancel_scope.cancel()  # as a SIGKILL would: nothing more is settled


async def test_a_restarted_pool_asks_again_for_what_the_core_had_not_recorded(
    relay_factory: Callable[..., NostrRelay], tmp_path: Path
) -> None:
    window = 1
    with trio.fail_after(90):
        relay = relay_factory()
        service, wallet = generate_secret_key(), generate_secret_key()
        settings = make_settings(relay.url, resubscribe_window=Duration(window))
        resume_file = tmp_path / RESUME_FILE
        first = wallet_event(wallet, pubkey(service), "recorded")
        second = wallet_event(wallet, pubkey(service), "taken, not recorded")

        async def record_one_take_another(receive) -> None:
            await wallet_publish(relay.url, first)
            (await take(receive, first.id)).receipt.settle(True)
            await wait_until(
                lambda: json.loads(resume_file.read_text())[relay.url] >= first.created_at
            )
            await wallet_publish(relay.url, second)
            assert not (await take(receive, second.id)).receipt.settled

        await run_pool(
            RelayPoolTransport(settings, make_context(service, tmp_path)), record_one_take_another
        )
        assert json.loads(resume_file.read_text())[relay.url] < second.created_at + 1
        await trio.sleep(2 * window + 1)  # down for longer than the window

        async def gets_it_again(receive) -> None:
            await take(receive, second.id)

        # A new process on the same data dir: the second event comes again.
        await run_pool(RelayPoolTransport(settings, make_context(service, tmp_path)), gets_it_again)

        # Control: without the kept point (another data dir) it resumes from "now" less
        # the window, and the second event is never asked for.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        fresh = RelayPoolTransport(settings, make_context(service, elsewhere))

        async def never_gets_it(receive) -> None:
            with trio.move_on_after(1.5):
                await take(receive, second.id)
                raise AssertionError("resumed from now, yet the old event came")

        await run_pool(fresh, never_gets_it)
        assert time.time() - second.created_at > window
