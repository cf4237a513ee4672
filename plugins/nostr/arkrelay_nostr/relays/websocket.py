"""The websocket under a relay connection (trio-websocket): opening it, and how it fails."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionTimeout,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

__all__ = ["CONNECTION_ERRORS", "MESSAGE_QUEUE_SIZE", "open_relay_socket"]

#: Messages trio-websocket holds for us before it stops reading the socket (backpressure).
MESSAGE_QUEUE_SIZE = 16

#: What a relay going away looks like from here; each ends the session and we reconnect.
CONNECTION_ERRORS = (
    HandshakeError,
    ConnectionClosed,
    OSError,
    trio.BrokenResourceError,
    trio.TooSlowError,
)


@asynccontextmanager
async def open_relay_socket(
    url: str, *, connect_timeout: float, disconnect_timeout: float, max_message_size: int
) -> AsyncIterator[WebSocketConnection]:
    """Open a websocket to ``url``, with a deadline on the opening and on the closing.

    A message longer than ``max_message_size`` closes the connection (1009).
    """
    # trio-websocket 0.12 leaves its reader task waiting when the opening handshake times
    # out, so its own connect_timeout never returns against a peer that accepts TCP and
    # stays silent. This deadline covers the whole opening instead.
    with trio.CancelScope(deadline=trio.current_time() + connect_timeout) as opening:
        async with open_websocket_url(
            url,
            message_queue_size=MESSAGE_QUEUE_SIZE,
            max_message_size=max_message_size,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
        ) as ws:
            opening.deadline = math.inf
            yield ws
    if opening.cancelled_caught:
        raise ConnectionTimeout
