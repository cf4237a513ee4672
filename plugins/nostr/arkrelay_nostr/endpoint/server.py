"""The endpoint's HTTP side: a hand-written ASGI app served by hypercorn's trio worker.

One URL, three answers: a websocket upgrade is a NIP-01 relay session; a GET asking for
``application/nostr+json`` gets the NIP-11 document; any other GET a line of text.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.config import Config, Sockets

from arkrelay_core.http.bodylimit import BodyLimit

from ..settings import EndpointSettings
from . import wsguard
from .connection import Connection
from .relay import Relay

__all__ = [
    "OVERSIZE_FACTOR",
    "PING_INTERVAL_S",
    "STALL_TIMEOUT_MS",
    "RelayApp",
    "hypercorn_config",
    "ws_url",
]

#: hypercorn closes the socket (code 1009) on a message this many times the configured
#: limit; between the limit and that, the relay answers per NIP-01 and keeps the client.
OVERSIZE_FACTOR = 2
#: A client whose socket takes no data for this long (it stopped reading, or vanished) is
#: disconnected by the kernel: hypercorn finishes every write it starts, so without this a
#: client that never reads would hold its connection open until the gateway stops.
STALL_TIMEOUT_MS = 60_000
#: Pings keep idle subscriptions alive through proxies, and make TCP notice dead peers.
PING_INTERVAL_S = 30.0

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-headers", b"*"),
    (b"access-control-allow-methods", b"GET, OPTIONS"),
]
_TEXT = (b"content-type", b"text/plain; charset=utf-8")


class _Config(Config):
    """hypercorn's Config, whose listening sockets also bound how long a write may stall."""

    def create_sockets(self) -> Sockets:
        sockets = super().create_sockets()
        if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux; accepted sockets inherit it
            for sock in sockets.insecure_sockets:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, STALL_TIMEOUT_MS)
        return sockets


def hypercorn_config(settings: EndpointSettings) -> Config:
    wsguard.install()
    config = _Config()
    config.bind = [str(settings.listen)]
    config.websocket_max_message_size = settings.max_message_bytes * OVERSIZE_FACTOR
    config.websocket_ping_interval = PING_INTERVAL_S
    config.accesslog = None
    config.errorlog = logging.getLogger("arkrelay_nostr.endpoint.http")
    config.graceful_timeout = 2.0
    return config


def ws_url(bind: str) -> str:
    """hypercorn reports ``http://127.0.0.1:54321``; wallets connect to ``ws://...``."""
    scheme, sep, rest = bind.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}" if sep else f"ws://{bind}"


class RelayApp:
    """The ASGI application; ``information()`` renders the NIP-11 document on demand."""

    def __init__(self, relay: Relay, information: Callable[[], bytes]) -> None:
        self.relay = relay
        self.information = information
        #: Websockets open now, in all and per client address (counted from the handshake
        #: until the session ends, so a refused or closed one frees its place at once).
        self.open_total = 0
        self.open_per_ip: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            # No route reads a body; BodyLimit drains any sent, so it cannot pin the socket.
            await BodyLimit(self._http_answer, 0)(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    def _refusal(self, ip: str) -> str | None:
        settings = self.relay.settings
        if self.open_total >= settings.max_connections:
            return "too many connections to this relay; try again later\n"
        if self.open_per_ip[ip] >= settings.max_connections_per_ip:
            return "too many connections from your address; close one first\n"
        return None

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if scope.get("http_version") not in ("1.0", "1.1"):
            # Over HTTP/2 hypercorn's stream is not the guarded one (see wsguard).
            body = b"websockets over HTTP/1.1 only\n"
            return await _deny(send, 505, body)
        client = scope.get("client")
        ip = str(client[0]) if client else ""
        refusal = self._refusal(ip)
        if refusal is not None:
            self.relay.counters.connections_refused += 1
            return await _deny(send, 503, refusal.encode())
        self.open_total += 1
        self.open_per_ip[ip] += 1
        try:
            await send({"type": "websocket.accept"})
            await Connection(self.relay, send, receive).run()
        finally:
            self.open_total -= 1
            self.open_per_ip[ip] -= 1
            if self.open_per_ip[ip] <= 0:
                del self.open_per_ip[ip]

    async def _http_answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "OPTIONS":
            return await _respond(send, 204, [*_CORS], b"")
        if method not in ("GET", "HEAD"):
            headers = [_TEXT, (b"allow", b"GET, HEAD, OPTIONS")]
            return await _respond(send, 405, headers, b"method not allowed\n", method)
        accept = b",".join(v for k, v in scope["headers"] if k.lower() == b"accept")
        if b"application/nostr+json" in accept.lower():
            headers = [(b"content-type", b"application/nostr+json"), *_CORS]
            return await _respond(send, 200, headers, self.information(), method)
        if scope["path"] == "/":
            body = b"ArkRelay gateway: a Nostr relay. Connect with a websocket client.\n"
            return await _respond(send, 200, [_TEXT], body, method)
        await _respond(send, 404, [_TEXT], b"not found\n", method)


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, method: str = "GET"
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


async def _deny(send: Send, status: int, body: bytes) -> None:
    """Answer a websocket handshake with a plain HTTP response (ASGI's denial response)."""
    headers = [_TEXT, (b"content-length", str(len(body)).encode()), (b"retry-after", b"10")]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
