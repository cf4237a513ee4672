"""The endpoint's parts without a network: the store's batching, filters, token buckets."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import trio
import trio.testing
from arkrelay_nostr.endpoint.auth import PRIVATE_KINDS
from arkrelay_nostr.endpoint.filters import FilterError, parse_filter
from arkrelay_nostr.endpoint.limits import KeyedBuckets, TokenBucket
from arkrelay_nostr.endpoint.store import AddOutcome, EventStore, StoreError

from arkrelay_core.nostr import encode_event, generate_secret_key, sign_event

from .endpoint_harness import TEST_TIMEOUT_S

WALLET = generate_secret_key()


async def _open(path: Path, max_events: int = 1000) -> EventStore:
    return await EventStore.open(path, max_events=max_events, private_kinds=PRIVATE_KINDS)


async def test_concurrent_adds_keep_nip01_rules(tmp_path: Path) -> None:
    now = int(time.time())
    note = sign_event(WALLET, kind=1, content="same")
    old, new = (
        sign_event(WALLET, kind=30000, content=c, tags=[["d", "x"]], created_at=at)
        for c, at in (("old", now - 5), ("new", now))
    )
    outcomes: dict[str, list[AddOutcome]] = {"note": [], "old": [], "new": []}
    with trio.fail_after(TEST_TIMEOUT_S):
        store = await _open(tmp_path / "events.sqlite3")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.run_writer)

            async def add(name: str, event) -> None:
                outcomes[name].append(await store.add(event, encode_event(event).decode()))

            async with trio.open_nursery() as adders:
                for _ in range(3):
                    adders.start_soon(add, "note", note)
                adders.start_soon(add, "new", new)
                adders.start_soon(add, "old", old)
            stored = await store.query([parse_filter({}, max_limit=10)], readers=None)
            nursery.cancel_scope.cancel()
        await store.aclose()
    assert sorted(outcomes["note"], key=lambda o: o.value) == [
        AddOutcome.DUPLICATE,
        AddOutcome.DUPLICATE,
        AddOutcome.STORED,
    ]
    assert outcomes["new"] == [AddOutcome.STORED]
    assert outcomes["old"] in ([AddOutcome.SUPERSEDED], [AddOutcome.STORED])
    newest_first = sorted([new, note], key=lambda e: (-e.created_at, e.id))
    assert [event_id for event_id, _ in stored] == [e.id for e in newest_first]
    assert store.count == 2


async def test_a_store_file_from_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with trio.fail_after(TEST_TIMEOUT_S), pytest.raises(StoreError, match="schema version 99"):
        await _open(path)


async def _add_all(store: EventStore, events, *, own: bool = False) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.run_writer)
        for event in events:
            await store.add(event, encode_event(event).decode(), own=own)
        nursery.cancel_scope.cancel()


async def test_a_version_1_file_is_upgraded_in_place_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    first = sign_event(WALLET, kind=1, content="from version 1")
    with trio.fail_after(TEST_TIMEOUT_S):
        store = await _open(path)
        await _add_all(store, [first])
        await store.aclose()
        with sqlite3.connect(path) as db:  # what version 1 of the store wrote
            db.execute("DROP INDEX events_from_clients")
            db.execute("ALTER TABLE events DROP COLUMN own")
            db.execute("PRAGMA user_version = 1")
        store = await _open(path, max_events=100)
        later = [sign_event(WALLET, kind=1, content=f"{i}") for i in range(100)]
        await _add_all(store, later)
        stored = await store.query([parse_filter({"limit": 500}, max_limit=500)], readers=None)
        await store.aclose()
    # The old row counts as a client's: it arrived first, so the limit took it first.
    assert {event_id for event_id, _ in stored} == {e.id for e in later}
    assert path.stat().st_mode & 0o777 == 0o600


async def test_adds_after_the_writer_stopped_fail_instead_of_hanging(tmp_path: Path) -> None:
    note = sign_event(WALLET, kind=1, content="late")
    with trio.fail_after(TEST_TIMEOUT_S):
        store = await _open(tmp_path / "events.sqlite3")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.run_writer)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        with pytest.raises(StoreError, match="closed"):
            await store.add(note, encode_event(note).decode())
        await store.aclose()


def test_filters_match_as_nip01_says() -> None:
    event = sign_event(
        WALLET, kind=7, content="+", tags=[["e", "a" * 64], ["t", "x"]], created_at=100
    )
    assert parse_filter({"kinds": [7], "#e": ["a" * 64]}, max_limit=5).matches(event)
    assert parse_filter({"#t": ["y", "x"], "since": 100, "until": 100}, max_limit=5).matches(event)
    assert not parse_filter({"#t": ["x"], "#e": ["b" * 64]}, max_limit=5).matches(event)
    assert not parse_filter({"since": 101}, max_limit=5).matches(event)
    assert not parse_filter({"authors": []}, max_limit=5).can_match()
    assert not parse_filter({"since": 5, "until": 4}, max_limit=5).can_match()
    assert parse_filter({"limit": 10**9}, max_limit=5).limit == 5
    with pytest.raises(FilterError, match=r"^invalid: "):
        parse_filter({"kinds": [1.0]}, max_limit=5)


async def test_a_token_bucket_refills_at_its_rate(autojump_clock: trio.testing.MockClock) -> None:
    bucket = TokenBucket(2.0)
    assert [bucket.try_take() for _ in range(3)] == [True, True, False]
    await trio.sleep(0.5)
    assert bucket.try_take() is True
    assert bucket.try_take() is False
    await trio.sleep(10)
    assert [bucket.try_take() for _ in range(3)] == [True, True, False]


async def test_keyed_buckets_stay_bounded(autojump_clock: trio.testing.MockClock) -> None:
    buckets = KeyedBuckets(1.0, max_keys=10)
    for key in range(10):
        assert buckets.try_take(f"k{key}") is True
    assert buckets.try_take("k0") is False  # still draining, so still remembered
    assert buckets.try_take("k10") is True
    assert len(buckets) <= 10
    await trio.sleep(5)  # every bucket full again: forgetting them loses nothing
    buckets.try_take("k11")
    assert len(buckets) == 1
