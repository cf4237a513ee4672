"""An ASGI wrapper that holds a request body limit on every route and never deadlocks.

hypercorn (0.18) hands request body chunks to the app through a queue of
``max_app_queue_size`` messages and, once the response is out, puts ``http.disconnect`` on
the same queue before it closes the socket. An app that answers without reading the body
(a GET given 64 MB, a 413 decided from ``Content-Length``) leaves that queue full, so the
put waits forever: the connection and its descriptor are held until the gateway stops.

Here one task (the pump) always reads what hypercorn sends: it passes the body on until it
passes ``max_bytes``, then only that it is too large (one chunk past the limit, so the app
sees the excess), and discards the rest. Memory is bounded by the limit, hypercorn's queue
never fills, and once the app has answered hypercorn closes the socket at once.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

__all__ = ["BodyLimit"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Wraps ``app``: for HTTP requests, the body reaches it only up to ``max_bytes`` (plus
    at most one chunk, so that it can tell the body is too large) and is always drained."""

    def __init__(self, app: App, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # Unbounded in count, bounded in bytes: the pump forwards at most max_bytes plus
        # one chunk, then a final message.
        inbox, outbox = trio.open_memory_channel[Message](math.inf)
        answering = trio.Event()

        async def tracked_send(message: Message) -> None:
            answering.set()
            await send(message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, receive, inbox, answering)
            await self.app(scope, outbox.receive, tracked_send)

    async def _pump(
        self, receive: Receive, inbox: trio.MemorySendChannel[Message], answering: trio.Event
    ) -> None:
        # Never closes ``inbox``: quart keeps reading until it is done with the request,
        # and a closed channel would be an error to it, not the end of the body.
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: nothing follows it
                # Once the answer is under way, hypercorn sends the disconnect from inside
                # the app's last send; passed on, it makes quart cancel that very send
                # before hypercorn has closed the socket, which then stays open.
                if not answering.is_set():
                    inbox.send_nowait(message)
                return
            more = bool(message.get("more_body", False))
            if seen <= self.max_bytes:  # the chunk that passes the limit still goes
                seen += len(message.get("body", b""))
                inbox.send_nowait(message)
            elif not more:
                inbox.send_nowait({"type": "http.request", "body": b"", "more_body": False})
            if not more:
                # Complete: hypercorn's disconnect, once the response is out, finds room
                # in its queue without us.
                return
