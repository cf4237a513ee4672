"""The endpoint under abuse from the open internet (issue #17): oversize frames, connection
floods that leave without a close handshake, and far-future events meant to push the
gateway's own events out of the store. Figures (RSS, descriptors, time to serve) are in
bench/endpoint_abuse.py; these tests assert what a client sees."""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest
import trio
from trio_websocket import ConnectionClosed
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request

from arkrelay_core.config import Duration
from arkrelay_core.nostr import generate_secret_key, sign_event

from .endpoint_harness import as_json, connect, endpoint_running

WALLET = generate_secret_key()


async def _handshake(url: str) -> trio.SocketStream | None:
    """A websocket opened on a raw socket, so the test can misbehave on it at will;
    ``None`` if the endpoint refused it (with HTTP 503, the only refusal expected)."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host=f"{host}:{port}", target="/")))
    while True:
        data = await stream.receive_some(4096)
        assert data, "closed during the handshake"
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                return stream
            if isinstance(event, RejectConnection):
                assert event.status_code == 503
                await stream.aclose()
                return None


def _reset(stream: trio.SocketStream) -> None:
    """Leave without a close handshake: SO_LINGER 0 makes close() send an RST."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


def _frame_header(length: int) -> bytes:
    # FIN + text opcode; masked (as a client must), 64-bit length, an all-zero mask key
    # so the payload goes out as written.
    return bytes([0x81, 0x80 | 127]) + struct.pack("!Q", length) + b"\0\0\0\0"


async def test_an_oversize_frame_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    declared = 64 * 1024 * 1024
    async with endpoint_running(tmp_path, max_message_bytes=1024) as (nursery, endpoint):
        stream = await _handshake(endpoint.url)
        assert stream is not None
        await stream.send_all(_frame_header(declared))
        chunk = b"a" * 65536
        sent = 0
        with pytest.raises((trio.BrokenResourceError, trio.ClosedResourceError)):
            while sent < declared:
                await stream.send_all(chunk)
                sent += len(chunk)
        # The endpoint stopped reading at its limit (2 KB) and closed the socket: what
        # the client got out before its writes failed is what the kernels' buffers held.
        assert sent < declared // 4
        await stream.aclose()
        again = await connect(nursery, endpoint.url)
        assert (await again.publish(sign_event(WALLET, kind=1, content="fine")))[2] is True


async def test_connections_past_the_caps_get_http_503(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, max_connections_per_ip=2) as (nursery, endpoint):
        first = await connect(nursery, endpoint.url)
        await connect(nursery, endpoint.url)
        assert await _handshake(endpoint.url) is None
        await first.aclose()
        # Its place is free again as soon as it has left.
        while (third := await _handshake(endpoint.url)) is None:  # noqa: ASYNC110
            await trio.sleep(0.05)
        await third.aclose()
        assert endpoint.transport.statistics()["connections_refused"] >= 1

    async with endpoint_running(tmp_path, max_connections=1) as (nursery, endpoint):
        await connect(nursery, endpoint.url)
        assert await _handshake(endpoint.url) is None
        assert endpoint.transport.statistics()["connections_refused"] == 1


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
async def test_clients_that_reset_without_closing_release_their_sockets(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, max_connections=8) as (nursery, endpoint):
        # One served client first, so every lazily opened descriptor exists already.
        served = await connect(nursery, endpoint.url)
        await served.req("warm", {"kinds": [1]})
        await trio.sleep(0.2)
        baseline = _open_descriptors()
        for _ in range(40):  # five times the cap: each must free its place
            while (stream := await _handshake(endpoint.url)) is None:  # noqa: ASYNC110
                await trio.sleep(0.01)  # the endpoint has not seen the last reset yet
            _reset(stream)
        # The server's side of every reset socket is closed (the ping task no longer
        # holds it for a ping interval); the test's deadline (20 s) is under that (30 s).
        while _open_descriptors() > baseline:  # noqa: ASYNC110
            await trio.sleep(0.05)
        again = await connect(nursery, endpoint.url)
        assert (await again.publish(sign_event(WALLET, kind=1, content="served")))[2] is True


async def test_far_future_events_are_refused(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        far = sign_event(WALLET, kind=1, content="x", created_at=2**53 - 1)
        refused = await client.publish(far)
        assert refused[2] is False and refused[3].startswith("invalid:")
        soon = sign_event(WALLET, kind=1, content="y", created_at=int(time.time()) + 600)
        assert (await client.publish(soon))[2] is True
        assert await client.req("all", {"authors": [far.pubkey]}) == [as_json(soon)]
    async with endpoint_running(tmp_path, max_created_at_ahead=Duration(60)) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        refused = await client.publish(soon)
        assert refused[2] is False and refused[3].startswith("invalid:")


async def test_a_flood_of_future_dated_events_never_evicts_the_gateways(tmp_path: Path) -> None:
    settings = {"max_stored_events": 100, "events_per_second_per_connection": 10_000.0}
    async with endpoint_running(tmp_path, **settings) as (nursery, endpoint):
        own = [endpoint.sign_as_gateway(31340, f"outcome {i}", [["d", f"s{i}"]]) for i in range(5)]
        for event in own:
            await endpoint.transport.publish(event)
        client = await connect(nursery, endpoint.url)
        latest = int(time.time()) + 14 * 60  # as far ahead as the default skew allows
        sent = []
        for i in range(150):  # fresh keys: no per-pubkey limit holds them back
            spam = sign_event(generate_secret_key(), kind=1, content="", created_at=latest - i)
            assert (await client.publish(spam))[2] is True
            sent.append(spam)
        served = await client.req("gw", {"authors": [endpoint.gateway_pubkey]})
        assert sorted(e["id"] for e in served) == sorted(e.id for e in own)
        # The clients' events went by arrival: the first sent (dated latest) are gone.
        kept = await client.req("spam", {"kinds": [1], "limit": 500})
        assert {e["id"] for e in kept} == {e.id for e in sent[-95:]}
        assert endpoint.transport.statistics()["events_stored"] == 100


async def test_the_oversize_close_still_reaches_a_well_behaved_client(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, max_message_bytes=1024) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        await client.send_raw("[" + " " * 5000 + "]")
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
        assert closed.value.reason.code == 1009


async def _answer_to_post(url: str, total: int, *, chunked: bool) -> bytes:
    """POST a ``total``-byte body to the endpoint's HTTP side on a raw socket; what came
    back before the server closed the connection (it must close it)."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = f"POST / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{framing}\r\n\r\n"
    piece = b"x" * 0x10000
    chunk = b"10000\r\n" + piece + b"\r\n" if chunked else piece
    try:
        await stream.send_all(head.encode())
        for _ in range(total // 0x10000):
            await stream.send_all(chunk)
    except trio.BrokenResourceError:
        pass  # answered and closed before the body was all out
    answer = b""
    try:
        while data := await stream.receive_some(4096):
            answer += data
    except trio.BrokenResourceError:
        pass
    await stream.aclose()
    return answer


async def test_a_body_sent_to_the_http_side_never_pins_the_connection(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        for chunked in (False, True):
            answer = await _answer_to_post(endpoint.url, 16 * 1024 * 1024, chunked=chunked)
            assert answer.startswith(b"HTTP/1.1 405 "), answer[:80]
        again = await connect(nursery, endpoint.url)
        assert (await again.publish(sign_event(WALLET, kind=1, content="fine")))[2] is True


async def test_websockets_over_http2_are_refused(tmp_path: Path) -> None:
    """hypercorn takes HTTP/2 with prior knowledge in cleartext and websockets over it
    (RFC 8441 extended CONNECT), where its message buffer is not the guarded one."""
    async with endpoint_running(tmp_path, max_message_bytes=1024) as (nursery, endpoint):
        host, port = endpoint.url.removeprefix("ws://").rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        h2c.initiate_connection()
        await stream.send_all(h2c.data_to_send())
        status = None
        stream_id = h2c.get_next_available_stream_id()
        connect_sent = False
        while status is None:
            data = await stream.receive_some(65536)
            assert data, "the endpoint closed the HTTP/2 connection"
            for event in h2c.receive_data(data):
                if isinstance(event, h2.events.RemoteSettingsChanged) and not connect_sent:
                    h2c.send_headers(
                        stream_id,
                        [
                            (":method", "CONNECT"),
                            (":protocol", "websocket"),
                            (":scheme", "http"),
                            (":path", "/"),
                            (":authority", f"{host}:{port}"),
                            ("sec-websocket-version", "13"),
                        ],
                    )
                    connect_sent = True
                elif isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers)[b":status"]
            await stream.send_all(h2c.data_to_send())
        assert status == b"505"
        await stream.aclose()
        again = await connect(nursery, endpoint.url)
        assert (await again.publish(sign_event(WALLET, kind=1, content="fine")))[2] is True
