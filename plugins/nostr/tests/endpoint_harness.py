"""What the endpoint tests share: a running endpoint on port 0 and a small NIP-01 client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio
from arkrelay_nostr.endpoint import EndpointTransport
from arkrelay_nostr.settings import EndpointSettings
from trio_websocket import WebSocketConnection, connect_websocket_url

from arkrelay_core.config import HostPort
from arkrelay_core.interfaces import InboundEvent, PluginContext
from arkrelay_core.nostr import (
    Event,
    encode_event,
    generate_secret_key,
    sign_event,
    xonly_public_key,
)

#: Absolute bound on every endpoint test (they take well under a second each).
TEST_TIMEOUT_S = 20
#: How long "nothing arrives" is watched for.
QUIET_S = 0.3


def pubkey_of(secret: bytes) -> str:
    return xonly_public_key(secret).hex()


def as_json(event: Event) -> dict[str, Any]:
    return json.loads(encode_event(event))


@dataclass
class Endpoint:
    transport: EndpointTransport
    #: What reached the core, in order (a receipt is settled once its event is here).
    inbound: trio.MemoryReceiveChannel[InboundEvent]
    gateway_secret: bytes
    scope: trio.CancelScope
    stopped: trio.Event
    listening: list[str] = field(default_factory=list)
    #: How the core answers each receipt: "record", "refuse" (settled as not recorded) or
    #: "silent" (never settled, as a core that is stuck).
    core: str = "record"

    @property
    def url(self) -> str:
        return self.transport.url

    @property
    def gateway_pubkey(self) -> str:
        return pubkey_of(self.gateway_secret)

    def sign_as_gateway(self, kind: int, content: str, tags: Sequence[Sequence[str]]) -> Event:
        return sign_event(self.gateway_secret, kind=kind, content=content, tags=tags)

    async def stop(self) -> None:
        """Stop serving and wait until the transport has shut down (store closed)."""
        self.scope.cancel()
        await self.stopped.wait()


async def _run(
    transport: EndpointTransport,
    inbound: trio.MemorySendChannel[InboundEvent],
    stopped: trio.Event,
    *,
    task_status: trio.TaskStatus[trio.CancelScope],
) -> None:
    try:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(transport.serve, inbound))
                task_status.started(scope)
    finally:
        inbound.close()  # the core's side ends with the transport
        stopped.set()


async def start_endpoint(
    nursery: trio.Nursery,
    data_dir: Path,
    *,
    gateway_secret: bytes | None = None,
    **settings: Any,
) -> Endpoint:
    """Serve an endpoint on 127.0.0.1:0 under ``nursery``; ``settings`` override defaults."""
    secret = gateway_secret or generate_secret_key()
    listening = [pubkey_of(secret)]

    def sign(kind: int, content: str, tags: Sequence[Sequence[str]]) -> Event:
        return sign_event(secret, kind=kind, content=content, tags=tags)

    context = PluginContext(
        network="regtest",
        data_dir=data_dir,
        listening_pubkeys=lambda: list(listening),
        sign_event=sign,
        instance_name="endpoint",
    )
    transport = EndpointTransport(
        EndpointSettings(listen=HostPort("127.0.0.1", 0), **settings), context
    )
    send, receive = trio.open_memory_channel[InboundEvent](64)
    reached, inbound = trio.open_memory_channel[InboundEvent](64)
    stopped = trio.Event()
    scope = await nursery.start(_run, transport, send, stopped)
    endpoint = Endpoint(transport, inbound, secret, scope, stopped, listening)
    nursery.start_soon(_core, receive, reached, endpoint)
    return endpoint


async def _core(
    receive: trio.MemoryReceiveChannel[InboundEvent],
    reached: trio.MemorySendChannel[InboundEvent],
    endpoint: Endpoint,
) -> None:
    """The gateway's side of the hand-off, as ``endpoint.core`` says it answers."""
    async for item in receive:
        answer = endpoint.core
        if answer != "refuse":
            await reached.send(item)
        if item.receipt is not None and answer != "silent":
            item.receipt.settle(answer == "record")


class Client:
    """A websocket client speaking raw NIP-01 frames, for asserting exact answers."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, *message: Any) -> None:
        await self.ws.send_message(json.dumps(list(message)))

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send_message(frame)

    async def recv(self) -> list[Any]:
        return json.loads(await self.ws.get_message())

    async def publish(self, event: Event | dict[str, Any]) -> list[Any]:
        """Send an EVENT and return the relay's OK for it."""
        obj = as_json(event) if isinstance(event, Event) else event
        await self.send("EVENT", obj)
        return await self.expect("OK")

    async def expect(self, verb: str) -> list[Any]:
        message = await self.recv()
        assert message[0] == verb, f"expected {verb}, got {message}"
        return message

    async def req(self, sub_id: str, *filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Open a subscription; return the stored events it gets before its EOSE."""
        await self.send("REQ", sub_id, *filters)
        events = []
        while True:
            message = await self.recv()
            if message == ["EOSE", sub_id]:
                return events
            assert message[:2] == ["EVENT", sub_id], f"unexpected {message}"
            events.append(message[2])

    async def expect_quiet(self, seconds: float = QUIET_S) -> None:
        with trio.move_on_after(seconds):
            message = await self.ws.get_message()
            raise AssertionError(f"expected nothing, got {message}")

    async def aclose(self) -> None:
        await self.ws.aclose()


async def connect(nursery: trio.Nursery, url: str, **options: Any) -> Client:
    options.setdefault("message_queue_size", 64)
    options.setdefault("max_message_size", 4 * 1024 * 1024)
    return Client(await connect_websocket_url(nursery, url, **options))


@asynccontextmanager
async def endpoint_running(
    data_dir: Path, **settings: Any
) -> AsyncIterator[tuple[trio.Nursery, Endpoint]]:
    """An endpoint for the length of a test, the whole of which is bounded by a deadline."""
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            yield nursery, await start_endpoint(nursery, data_dir, **settings)
            nursery.cancel_scope.cancel()
