"""hypercorn's websocket stream, with the two leaks an attacker can lean on closed.

hypercorn 0.18 (``hypercorn/protocol/ws_stream.py``, ``WSStream``) has two weaknesses a
public relay cannot keep:

* its message buffer writes a fragment *before* comparing the total with
  ``websocket_max_message_size``, and after refusing it keeps reading the same
  connection, appending every later fragment: one 128 MB frame is buffered whole.
  Here a fragment that would take the message over the limit is never buffered: the
  client gets close code 1009 and its socket is closed at once, unread data and all.
* its ping task sleeps a whole ping interval before it notices that the client left, and
  the socket is released only when every task of the connection has ended: a client that
  drops without a close handshake held its file descriptor for up to 30 s. Here the ping
  task ends the moment the stream closes.

hypercorn offers no hook for its stream class, so :func:`install` puts the subclass in the
one place that creates it for HTTP/1.1. hypercorn also takes HTTP/2 with prior knowledge
in cleartext, and websockets over it (RFC 8441); the endpoint's app refuses those before
accepting them, so no websocket message is ever read through the unguarded HTTP/2 path.
"""

from __future__ import annotations

import hypercorn.protocol.h11 as h11_protocol
import trio
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.ws_stream import WSStream
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping
from wsproto.frame_protocol import CloseReason

__all__ = ["GuardedWSStream", "install"]


class GuardedWSStream(WSStream):
    """A ``WSStream`` that holds its size limit while reading and releases promptly."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._gone = trio.Event()

    async def handle(self, event: object) -> None:
        await super().handle(event)  # type: ignore[arg-type]
        if self.closed:
            self._gone.set()

    async def _handle_events(self) -> None:
        for event in self.connection.events():
            if isinstance(event, Message):
                if self.buffer.length + len(event.data) > self.buffer.max_length:
                    await self._refuse_oversize()
                    return
                self.buffer.extend(event)
                if event.message_finished:
                    assert self.app_put is not None
                    await self.app_put(self.buffer.to_message())
                    self.buffer.clear()
            elif isinstance(event, Ping):
                await self._send_wsproto_event(event.response())
            elif isinstance(event, CloseConnection):
                if self.connection.state == ConnectionState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                await self.send(StreamClosed(stream_id=self.stream_id))

    async def _refuse_oversize(self) -> None:
        self.buffer.clear()
        await self._send_wsproto_event(CloseConnection(code=CloseReason.MESSAGE_TOO_BIG))
        # StreamClosed tells the app the client is gone; the h11 layer, seeing a stream
        # that did not end cleanly, then closes the socket instead of waiting for the
        # client's close frame behind the rest of its oversize message.
        await self.send(StreamClosed(stream_id=self.stream_id))

    async def _send_pings(self) -> None:
        interval = self.config.websocket_ping_interval
        assert interval is not None
        while not self.closed:
            await self._send_wsproto_event(Ping())
            with trio.move_on_after(interval):
                await self._gone.wait()


def install() -> None:
    """Make hypercorn's HTTP/1.1 protocol create :class:`GuardedWSStream` (idempotent)."""
    current = h11_protocol.WSStream
    if current is GuardedWSStream:
        return
    if current is not WSStream:
        raise RuntimeError(f"hypercorn's websocket stream is already replaced by {current!r}")
    h11_protocol.WSStream = GuardedWSStream  # type: ignore[misc]
