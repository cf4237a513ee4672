"""The endpoint as a NIP-01 relay: publishing, subscriptions, storage, the core's inbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from arkrelay_core.nostr import generate_secret_key, sign_event
from arkrelay_core.protocol import Kind

from .endpoint_harness import (
    TEST_TIMEOUT_S,
    as_json,
    connect,
    endpoint_running,
    pubkey_of,
    start_endpoint,
)

WALLET = generate_secret_key()
OTHER = generate_secret_key()


def note(content: str, *, secret: bytes = WALLET, created_at: int | None = None, tags=()):
    return sign_event(secret, kind=1, content=content, tags=tags, created_at=created_at)


async def test_publish_is_acknowledged_and_a_duplicate_says_so(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        event = note("hello")
        assert await client.publish(event) == ["OK", event.id, True, ""]
        again = await client.publish(event)
        assert again[:3] == ["OK", event.id, True]
        assert again[3].startswith("duplicate:")
        stats = endpoint.transport.statistics()
        assert stats["events_accepted"] == 2
        assert stats["events_stored"] == 1


async def test_bad_signature_and_bad_id_are_refused_as_invalid(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        event = as_json(note("signed"))
        forged = {**event, "sig": ("0" if event["sig"][0] != "0" else "1") + event["sig"][1:]}
        answer = await client.publish(forged)
        assert answer[:3] == ["OK", event["id"], False]
        assert answer[3].startswith("invalid:")
        tampered = {**event, "content": "changed"}
        answer = await client.publish(tampered)
        assert answer[2] is False and answer[3].startswith("invalid:")
        assert await client.req("all", {}) == []
        assert endpoint.transport.statistics()["events_rejected"] == {"invalid": 2}


async def test_req_returns_stored_events_newest_first_then_eose(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        now = int(time.time())
        events = [note(f"n{i}", created_at=now - 100 + i) for i in range(5)]
        for event in events:
            assert (await client.publish(event))[2] is True
        got = await client.req("s1", {"kinds": [1]})
        assert [e["id"] for e in got] == [e.id for e in reversed(events)]
        limited = await client.req("s2", {"kinds": [1], "limit": 2})
        assert [e["id"] for e in limited] == [events[4].id, events[3].id]
        window = await client.req("s3", {"since": now - 99, "until": now - 97})
        assert [e["id"] for e in window] == [events[3].id, events[2].id, events[1].id]
        assert await client.req("s4", {"authors": [pubkey_of(OTHER)]}) == []
        by_id = await client.req("s5", {"ids": [events[0].id]}, {"ids": [events[1].id]})
        assert [e["id"] for e in by_id] == [events[1].id, events[0].id]


async def test_tag_filters_match_any_value_and_all_letters(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        alice, bob = pubkey_of(WALLET), pubkey_of(OTHER)
        to_alice = note("a", tags=[["p", alice], ["t", "ark"]])
        to_bob = note("b", tags=[["p", bob], ["t", "ln"]])
        for event in (to_alice, to_bob):
            await client.publish(event)
        assert [e["id"] for e in await client.req("p", {"#p": [alice]})] == [to_alice.id]
        both = await client.req("pp", {"#p": [alice, bob]})
        assert {e["id"] for e in both} == {to_alice.id, to_bob.id}
        assert await client.req("pt", {"#p": [alice], "#t": ["ln"]}) == []
        assert [e["id"] for e in await client.req("t", {"#t": ["ln"]})] == [to_bob.id]


async def test_live_events_follow_eose_and_stop_after_close(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        reader = await connect(nursery, endpoint.url)
        writer = await connect(nursery, endpoint.url)
        old = note("old")
        await writer.publish(old)
        assert [e["id"] for e in await reader.req("live", {"kinds": [1]})] == [old.id]
        new = note("new")
        await writer.publish(new)
        assert await reader.recv() == ["EVENT", "live", as_json(new)]
        other_kind = sign_event(WALLET, kind=7, content="+")
        await writer.publish(other_kind)
        await reader.expect_quiet()
        await reader.send("CLOSE", "live")
        await writer.publish(note("after close"))
        await reader.expect_quiet()
        assert endpoint.transport.statistics()["subscriptions"] == 0


async def test_a_req_with_an_open_id_replaces_that_subscription(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        reader = await connect(nursery, endpoint.url)
        writer = await connect(nursery, endpoint.url)
        await reader.req("s", {"kinds": [1]})
        await reader.req("s", {"kinds": [7]})
        await writer.publish(note("kind 1"))
        await reader.expect_quiet()
        reaction = sign_event(WALLET, kind=7, content="+")
        await writer.publish(reaction)
        assert await reader.recv() == ["EVENT", "s", as_json(reaction)]


async def test_gateway_publish_reaches_live_subscriptions_and_is_stored(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        wallet = await connect(nursery, endpoint.url)
        me = pubkey_of(WALLET)
        await wallet.req("answers", {"#p": [me]})
        answer = endpoint.sign_as_gateway(
            int(Kind.CONFIRMATION), "{}", [["p", me], ["d", "action-1"]]
        )
        result = await endpoint.transport.publish(answer)
        assert result.accepted == (endpoint.url,)
        assert await wallet.recv() == ["EVENT", "answers", as_json(answer)]
        late = await connect(nursery, endpoint.url)
        assert await late.req("later", {"authors": [endpoint.gateway_pubkey]}) == [as_json(answer)]
        assert endpoint.transport.statistics()["published"] == 1


async def test_events_addressed_to_the_gateway_reach_the_core(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        gateway = endpoint.gateway_pubkey
        intent = sign_event(WALLET, kind=int(Kind.INTENT), content="{}", tags=[["p", gateway]])
        to_someone = sign_event(
            WALLET, kind=int(Kind.INTENT), content="{}", tags=[["p", pubkey_of(OTHER)]]
        )
        wrong_kind = note("mentions the gateway", tags=[["p", gateway]])
        for event in (to_someone, wrong_kind, intent):
            assert (await client.publish(event))[2] is True
        item = endpoint.inbound.receive_nowait()
        assert item.event == intent
        assert item.source.startswith("endpoint:")
        with pytest.raises(trio.WouldBlock):
            endpoint.inbound.receive_nowait()


async def test_a_rotated_in_key_is_listened_to_at_once(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        new_key = pubkey_of(generate_secret_key())
        endpoint.listening.append(new_key)
        response = sign_event(
            WALLET, kind=int(Kind.SIGNING_RESPONSE), content="x", tags=[["p", new_key]]
        )
        await client.publish(response)
        assert endpoint.inbound.receive_nowait().event == response


async def test_addressable_and_replaceable_events_keep_only_the_newest(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        now = int(time.time())

        def intent(d: str, at: int, content: str = "{}"):
            tags = [["d", d]] if d else []
            return sign_event(WALLET, kind=31510, content=content, tags=tags, created_at=at)

        first, second = intent("a", now - 10), intent("a", now)
        other_d = intent("b", now - 5)
        for event in (first, second, other_d):
            assert (await client.publish(event))[2] is True
        older = intent("a", now - 20)
        answer = await client.publish(older)
        assert answer[2] is True and answer[3].startswith("duplicate:")
        got = await client.req("addr", {"kinds": [31510]})
        assert [e["id"] for e in got] == [second.id, other_d.id]

        profile_old = sign_event(WALLET, kind=0, content="{}", created_at=now - 1)
        profile_new = sign_event(WALLET, kind=0, content='{"name":"w"}', created_at=now)
        await client.publish(profile_new)
        await client.publish(profile_old)
        assert [e["id"] for e in await client.req("meta", {"kinds": [0]})] == [profile_new.id]


async def test_equal_timestamps_keep_the_lowest_id(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        at = int(time.time())
        pair = [sign_event(WALLET, kind=10002, content=c, created_at=at) for c in ("x", "y")]
        low, high = sorted(pair, key=lambda e: e.id)
        await client.publish(low)
        await client.publish(high)
        assert [e["id"] for e in await client.req("r", {"kinds": [10002]})] == [low.id]


async def test_ephemeral_events_are_relayed_but_not_stored(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        reader = await connect(nursery, endpoint.url)
        writer = await connect(nursery, endpoint.url)
        await reader.req("eph", {"kinds": [20001]})
        ping = sign_event(WALLET, kind=20001, content="now")
        assert (await writer.publish(ping))[2] is True
        assert await reader.recv() == ["EVENT", "eph", as_json(ping)]
        assert await writer.req("later", {"kinds": [20001]}) == []


async def test_expired_events_are_refused_and_expiring_ones_vanish(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        now = int(time.time())
        expired = note("gone", tags=[["expiration", str(now - 1)]])
        answer = await client.publish(expired)
        assert answer[2] is False and answer[3].startswith("invalid:")
        soon = note("soon", tags=[["expiration", str(now + 2)]])
        assert (await client.publish(soon))[2] is True
        assert [e["id"] for e in await client.req("a", {"kinds": [1]})] == [soon.id]
        await trio.sleep(max(0.0, now + 2 - time.time()) + 0.1)
        assert await client.req("b", {"kinds": [1]}) == []


async def test_stored_events_survive_a_restart(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            first = await start_endpoint(nursery, tmp_path)
            client = await connect(nursery, first.url)
            kept = note("kept")
            await client.publish(kept)
            await client.aclose()
            await first.stop()
            second = await start_endpoint(nursery, tmp_path, gateway_secret=first.gateway_secret)
            assert not first.transport.statistics()["running"]
            client = await connect(nursery, second.url)
            assert await client.req("again", {"ids": [kept.id]}) == [as_json(kept)]
            assert second.transport.statistics()["events_stored"] == 1
            nursery.cancel_scope.cancel()


async def test_the_store_is_pruned_to_its_bound_oldest_first(tmp_path: Path) -> None:
    async with endpoint_running(
        tmp_path,
        max_stored_events=100,
        events_per_second_per_connection=1000.0,
        events_per_second_per_pubkey=1000.0,
    ) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        now = int(time.time())
        events = [note(f"{i}", created_at=now - 1000 + i) for i in range(105)]
        for event in events:
            assert (await client.publish(event))[2] is True
        got = await client.req("all", {"limit": 500})
        assert len(got) == 100
        assert {e["id"] for e in got} == {e.id for e in events[5:]}
        assert endpoint.transport.statistics()["events_stored"] == 100


async def test_publish_when_not_running_is_rejected_not_lost_silently(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            endpoint = await start_endpoint(nursery, tmp_path)
            await endpoint.stop()
            result = await endpoint.transport.publish(note("nowhere"))
            assert result.accepted == ()
            assert result.rejected[endpoint.url].startswith("error:")
