"""The endpoint's limits, each answered the NIP-01 way rather than by dropping the client."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import trio
import trio.lowlevel
from arkrelay_nostr.endpoint import connection, server
from arkrelay_nostr.endpoint.outbox import OUTBOX_SIZE
from trio_websocket import ConnectionClosed
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from arkrelay_core.nostr import generate_secret_key, sign_event

from .endpoint_harness import (
    TEST_TIMEOUT_S,
    Endpoint,
    as_json,
    connect,
    endpoint_running,
    start_endpoint,
)

WALLET = generate_secret_key()
OTHER = generate_secret_key()


def note(content: str, secret: bytes = WALLET):
    return sign_event(secret, kind=1, content=content)


async def test_open_subscriptions_are_capped_per_connection(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, max_subscriptions=2) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        await client.req("a", {"kinds": [1]})
        await client.req("b", {"kinds": [1]})
        await client.req("b", {"kinds": [2]})  # replacing one is not opening one
        await client.send("REQ", "c", {"kinds": [1]})
        refused = await client.expect("CLOSED")
        assert refused[1] == "c" and refused[2].startswith("blocked:")
        await client.send("CLOSE", "a")
        assert await client.req("c", {"kinds": [1]}) == []
        stats = endpoint.transport.statistics()
        assert stats["subscriptions"] == 2
        assert stats["subscriptions_refused"] == {"blocked": 1}


async def test_filters_per_req_are_capped(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, max_filters=2) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        await client.send("REQ", "many", {}, {}, {})
        refused = await client.expect("CLOSED")
        assert refused[1] == "many" and refused[2].startswith("invalid:")
        assert await client.req("two", {}, {}) == []


@pytest.mark.parametrize(
    "bad_filter",
    [
        {"ids": ["abc"]},
        {"ids": ["A" * 64]},
        {"authors": "f" * 64},
        {"kinds": ["1"]},
        {"kinds": [70000]},
        {"kinds": [True]},
        {"since": -1},
        {"until": 1.5},
        {"limit": -1},
        {"#e": ["not hex"]},
        {"#p": [1]},
        {"#t": "x"},
        {"#tag": ["x"]},
        {"search": "x"},
        ["not", "an", "object"],
        {"kinds": [1] * 5001},
    ],
)
async def test_malformed_filters_close_the_subscription_as_invalid(
    tmp_path: Path, bad_filter: object
) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        await client.send("REQ", "bad", {"kinds": [1]}, bad_filter)
        refused = await client.expect("CLOSED")
        assert refused[1] == "bad" and refused[2].startswith("invalid:")
        assert endpoint.transport.statistics()["subscriptions"] == 0


async def test_limit_is_capped_at_max_limit(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, max_limit=3) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        for i in range(5):
            await client.publish(note(f"{i}"))
        assert len(await client.req("capped", {"limit": 100})) == 3
        assert len(await client.req("default", {})) == 3


async def test_events_per_connection_are_rate_limited(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, events_per_second_per_connection=1.0) as (
        nursery,
        endpoint,
    ):
        client = await connect(nursery, endpoint.url)
        assert (await client.publish(note("first")))[2] is True
        refused = await client.publish(note("second"))
        assert refused[2] is False and refused[3].startswith("rate-limited:")
        assert endpoint.transport.statistics()["events_rejected"] == {"rate-limited": 1}
        # A fresh connection has its own bucket.
        other = await connect(nursery, endpoint.url)
        assert (await other.publish(note("third", OTHER)))[2] is True


async def test_events_per_pubkey_are_rate_limited_across_connections(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, events_per_second_per_pubkey=1.0) as (
        nursery,
        endpoint,
    ):
        first = await connect(nursery, endpoint.url)
        second = await connect(nursery, endpoint.url)
        assert (await first.publish(note("one")))[2] is True
        refused = await second.publish(note("two"))
        assert refused[2] is False and refused[3].startswith("rate-limited:")
        assert (await second.publish(note("someone else", OTHER)))[2] is True


async def test_a_message_over_the_limit_is_answered_and_the_client_kept(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, max_message_bytes=1024) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        big = note("x" * 1200)
        refused = await client.publish(big)
        assert refused[:3] == ["OK", big.id, False]
        assert refused[3].startswith("invalid:") and "1024" in refused[3]
        await client.send("REQ", "huge", {"#t": ["y" * 1100]})
        closed = await client.expect("CLOSED")
        assert closed[1] == "huge" and closed[2].startswith("invalid:")
        await client.send_raw("[" + " " * 1500 + "]")
        assert (await client.expect("NOTICE"))[1].startswith("invalid:")
        assert (await client.publish(note("small")))[2] is True


async def test_a_deeply_nested_message_is_answered(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        await client.send_raw("[" * 50_000 + "]" * 50_000)
        assert (await client.expect("NOTICE"))[1].startswith("invalid:")
        assert (await client.publish(note("still here")))[2] is True


async def test_a_message_far_over_the_limit_closes_the_websocket(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, max_message_bytes=1024) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        await client.send("EVENT", as_json(note("x" * 5000)))
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
        assert closed.value.reason.code == 1009
        again = await connect(nursery, endpoint.url)
        assert (await again.publish(note("the server is fine")))[2] is True


async def test_an_idle_connection_without_subscriptions_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Generous against a loaded machine: `listening` must subscribe within the timeout.
    monkeypatch.setattr(connection, "IDLE_TIMEOUT_S", 1.5)
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        listening = await connect(nursery, endpoint.url)
        await listening.req("s", {"kinds": [1]})
        idle = await connect(nursery, endpoint.url)
        with pytest.raises(ConnectionClosed) as closed:
            await idle.recv()
        assert closed.value.reason.code == 1000
        await listening.expect_quiet(2.0)
        event = note("still listening")
        await _publish_once(nursery, endpoint.url, event)
        assert await listening.recv() == ["EVENT", "s", as_json(event)]


async def _publish_once(nursery: trio.Nursery, url: str, event) -> None:
    client = await connect(nursery, url)
    assert (await client.publish(event))[2] is True
    await client.aclose()


async def _raw_websocket(url: str, rcvbuf: int) -> tuple[trio.SocketStream, WSConnection]:
    """A websocket client on a socket with a tiny receive buffer, that we never read."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, rcvbuf)
    await sock.connect((host, int(port)))
    stream = trio.SocketStream(sock)
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host=f"{host}:{port}", target="/")))
    while True:
        ws.receive_data(await stream.receive_some(4096))
        if any(isinstance(e, AcceptConnection) for e in ws.events()):
            return stream, ws


async def _flood_until_cut_off(endpoint: Endpoint, nursery: trio.Nursery) -> None:
    watcher = await connect(nursery, endpoint.url)
    await watcher.req("flood", {"kinds": [20000]})
    big = sign_event(WALLET, kind=20000, content="z" * 60_000)
    published = 0
    while endpoint.transport.statistics()["slow_disconnects"] == 0:
        # Ephemeral, so stored nowhere: the same event can go out again and again.
        await endpoint.transport.publish(big)
        published += 1
        assert published < 100 * OUTBOX_SIZE, "never cut off"
        # The watcher reads, so it keeps up (and lets the other tasks run meanwhile).
        assert await watcher.recv() == ["EVENT", "flood", as_json(big)]


async def _events_until_closed(stream: trio.SocketStream, ws: WSConnection) -> list[object]:
    seen: list[object] = []
    while True:
        try:
            data = await stream.receive_some(65536)
        except trio.BrokenResourceError:  # reset by the server's kernel
            return [*seen, "reset"]
        if not data:
            return [*seen, "eof"]
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, CloseConnection):
                return [*seen, event.code]
            seen.append(type(event).__name__)


async def test_a_client_that_does_not_read_is_cut_off_with_1008(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        stream, ws = await _raw_websocket(endpoint.url, rcvbuf=4096)
        await stream.send_all(ws.send(TextMessage(json.dumps(["REQ", "flood", {}]))))
        await _flood_until_cut_off(endpoint, nursery)
        stats = endpoint.transport.statistics()
        assert stats["connections"] == 1  # the watcher; the flooded one is gone
        assert stats["subscriptions"] == 1
        # Once the client reads again, what was under way arrives, then the close frame.
        outcome = await _events_until_closed(stream, ws)
        assert outcome[-1] == 1008
        await stream.aclose()


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux socket option")
async def test_a_stalled_socket_is_closed_by_the_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "STALL_TIMEOUT_MS", 300)
    async with endpoint_running(tmp_path) as (_, endpoint):
        stream, ws = await _raw_websocket(endpoint.url, rcvbuf=4096)
        await stream.send_all(ws.send(TextMessage(json.dumps(["REQ", "flood", {}]))))
        while endpoint.transport.statistics()["subscriptions"] == 0:  # noqa: ASYNC110
            await trio.sleep(0.01)
        big = sign_event(WALLET, kind=20000, content="z" * 60_000)
        # Whether the outbox overflows first or the kernel gives up on the stalled write
        # first, the client must end up gone, its socket closed under it.
        while endpoint.transport.statistics()["connections"]:
            await endpoint.transport.publish(big)
            await trio.lowlevel.checkpoint()  # let the sending task write (and stall)
        while endpoint.transport.statistics()["connections_closing"]:  # noqa: ASYNC110
            await trio.sleep(0.05)
        # What the client had buffered, then a reset: the close frame never came.
        assert (await _events_until_closed(stream, ws))[-1] == "reset"
        await stream.aclose()


async def test_stopping_does_not_wait_for_a_client_that_does_not_read(tmp_path: Path) -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            endpoint = await start_endpoint(nursery, tmp_path)
            stream, ws = await _raw_websocket(endpoint.url, rcvbuf=4096)
            await stream.send_all(ws.send(TextMessage(json.dumps(["REQ", "flood", {}]))))
            await _flood_until_cut_off(endpoint, nursery)
            await endpoint.stop()
            nursery.cancel_scope.cancel()
        await stream.aclose()
