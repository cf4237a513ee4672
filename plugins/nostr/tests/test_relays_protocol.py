"""Relay behaviours nostr-relay 1.14 does not show (CLOSED, ``auth-required:``, ``OK true``
with ``duplicate:``, oversized frames, a peer that never answers), from scripted peers on
loopback."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import trio
from arkrelay_nostr.relays import RelayPoolTransport
from arkrelay_nostr.settings import RelaysSettings
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from arkrelay_core.config import Duration
from arkrelay_core.interfaces import InboundEvent, PluginContext
from arkrelay_core.nostr import Event, generate_secret_key, sign_event, verify_event
from arkrelay_core.nostr import xonly_public_key as xonly

Script = Callable[[WebSocketConnection, int], Awaitable[None]]


def make_transport(url: str, secret: bytes, tmp_path: Path, **overrides: Any) -> RelayPoolTransport:
    def sign(kind: int, content: str, tags: Any) -> Event:
        return sign_event(secret, kind=kind, content=content, tags=tags)

    context = PluginContext(
        network="regtest",
        data_dir=tmp_path,
        listening_pubkeys=lambda: [xonly(secret).hex()],
        sign_event=sign,
    )
    values: dict[str, Any] = {
        "connect_timeout": Duration(2),
        "publish_timeout": Duration(3),
        "backoff_initial": Duration(0.05),
        "backoff_max": Duration(0.2),
    }
    values.update(overrides)
    return RelayPoolTransport(RelaysSettings(relays=[url], **values), context)


def send(ws: WebSocketConnection, *parts: Any) -> Awaitable[None]:
    return ws.send_message(msgspec.json.encode(list(parts)).decode())


@asynccontextmanager
async def scripted_relay(script: Script) -> AsyncIterator[str]:
    """A websocket peer on a free loopback port; ``script(ws, n)`` runs the n-th connection."""
    connections = 0

    async def handler(request: WebSocketRequest) -> None:
        nonlocal connections
        connections += 1
        ws = await request.accept()
        try:
            await script(ws, connections)
        except ConnectionClosed:
            return

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        yield f"ws://127.0.0.1:{server.port}"
        nursery.cancel_scope.cancel()


async def wait_until(condition: Callable[[], bool]) -> None:
    # statistics() is a plain snapshot with nothing to wait on; tests poll it (the code never does).
    while not condition():  # noqa: ASYNC110
        await trio.sleep(0.01)


@asynccontextmanager
async def serving(transport: RelayPoolTransport) -> AsyncIterator[None]:
    inbound, _ = trio.open_memory_channel[InboundEvent](10)
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.serve, inbound)
        yield
        nursery.cancel_scope.cancel()


async def test_auth_required_leads_to_auth_and_one_retry(tmp_path: Path) -> None:
    received: list[list[Any]] = []

    async def script(ws: WebSocketConnection, _: int) -> None:
        await send(ws, "AUTH", "challenge-1")
        requests = events = 0
        while True:
            message = msgspec.json.decode(await ws.get_message())
            received.append(message)
            match message:
                case ["REQ", subscription, *_]:
                    requests += 1
                    if requests == 1:
                        await send(ws, "CLOSED", subscription, "auth-required: who are you?")
                    elif requests == 2:
                        await send(ws, "CLOSED", subscription, "error: restarting")
                    else:
                        await send(ws, "EOSE", subscription)
                case ["EVENT", event]:
                    events += 1
                    if events == 1:
                        await send(ws, "OK", event["id"], False, "auth-required: sign in")
                    else:
                        await send(ws, "OK", event["id"], True, "duplicate: have it")

    with trio.fail_after(20):
        service = generate_secret_key()
        async with scripted_relay(script) as url:
            transport = make_transport(url, service, tmp_path)
            async with serving(transport):
                await wait_until(lambda: transport.statistics()["relays"][url]["live"])
                stats = transport.statistics()["relays"][url]
                assert (stats["subscriptions"], stats["subscriptions_closed"]) == (3, 2)
                assert stats["auth"] == "answered" and stats["connects"] == 1

                event = sign_event(service, kind=31511, content="{}", tags=[["d", "1"]])
                result = await transport.publish(event)
                assert result.accepted == (url,)
                assert [m[0] for m in received].count("EVENT") == 2

        auths = [msgspec.convert(m[1], Event) for m in received if m[0] == "AUTH"]
        # Once at the challenge, again after CLOSED auth-required, again after OK false.
        assert len(auths) == 3
        for auth in auths:
            assert verify_event(auth) and auth.kind == 22242
            assert auth.pubkey == xonly(service).hex()
            assert auth.tags == [["relay", url], ["challenge", "challenge-1"]]


async def test_a_rejection_keeps_the_relays_reason(tmp_path: Path) -> None:
    async def script(ws: WebSocketConnection, _: int) -> None:
        while True:
            match msgspec.json.decode(await ws.get_message()):
                case ["EVENT", event]:
                    await send(ws, "OK", event["id"], False, "blocked: not on the list")
                case ["REQ", subscription, *_]:
                    await send(ws, "EOSE", subscription)

    with trio.fail_after(20):
        service = generate_secret_key()
        async with scripted_relay(script) as url:
            transport = make_transport(url, service, tmp_path)
            async with serving(transport):
                await wait_until(lambda: transport.statistics()["relays"][url]["live"])
                event = sign_event(service, kind=31511, content="{}", tags=[["d", "1"]])
                result = await transport.publish(event)
        assert dict(result.rejected) == {url: "blocked: not on the list"}
        assert (result.accepted, result.timed_out) == ((), ())


async def test_an_oversized_message_closes_the_connection_and_it_reconnects(
    tmp_path: Path,
) -> None:
    async def script(ws: WebSocketConnection, connection: int) -> None:
        # Above 2 x max_event_bytes the client must hang up (1009), not buffer it.
        await send(ws, "NOTICE", "x" * 3000 if connection == 1 else "small")
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with scripted_relay(script) as url:
            transport = make_transport(url, generate_secret_key(), tmp_path, max_event_bytes=1024)
            async with serving(transport):
                await wait_until(lambda: transport.statistics()["relays"][url]["notices"] == 1)
                stats = transport.statistics()["relays"][url]
                assert stats["connects"] == 2 and stats["state"] == "connected"
                assert "1009" in stats["last_error"]


async def test_a_peer_that_never_answers_the_handshake_times_out(tmp_path: Path) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, host="127.0.0.1"), silent, 0
            )
            url = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
            transport = make_transport(
                url, generate_secret_key(), tmp_path, connect_timeout=Duration(0.3)
            )
            async with serving(transport):
                await wait_until(lambda: transport.statistics()["relays"][url]["last_error"])
                stats = transport.statistics()["relays"][url]
                assert "ConnectionTimeout" in stats["last_error"]
                assert stats["connects"] == 0 and stats["state"] != "connected"
            nursery.cancel_scope.cancel()
