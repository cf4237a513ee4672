"""A connection's outgoing messages: a bounded queue and the one task that sends them.

hypercorn finishes every socket write it starts, even when cancelled, so a write to a
client that stopped reading can wait until TCP gives up on it. The sending task therefore
runs in the transport's nursery, not the connection's: the connection can end (and the
gateway shut down) without waiting for it, and hypercorn, closing the socket as the
connection ends, releases it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import trio

__all__ = ["OUTBOX_SIZE", "AsgiSend", "Outbox"]

#: Messages waiting for a client to read them; live events past this cut the client off.
OUTBOX_SIZE = 256

AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]


class Outbox:
    def __init__(self, send: AsgiSend, size: int = OUTBOX_SIZE) -> None:
        self._send = send
        self._queue, self._pending = trio.open_memory_channel[str](size)
        self._close_frame: tuple[int, str] | None = None
        #: Set once the sender has sent its last message (the close frame, if any).
        self.done = trio.Event()

    async def put(self, text: str) -> None:
        """Queue an answer, waiting for room: a client's requests wait for its reading."""
        # Abandoned meanwhile: the answer has no one to go to.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._queue.send(text)

    def put_nowait(self, text: str) -> bool:
        """Queue a live event without waiting; ``False`` if the queue is full."""
        try:
            self._queue.send_nowait(text)
        except trio.WouldBlock:
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # abandoned: nothing more goes out
        return True

    def finish(self, close_frame: tuple[int, str] | None = None) -> None:
        """Send what is queued, then ``close_frame`` (code, reason) if given."""
        self._close_frame = close_frame
        self._queue.close()

    def abandon(self, close_frame: tuple[int, str] | None = None) -> None:
        """Drop what is queued; send only ``close_frame`` (if given now or to
        :meth:`finish`), once the write under way ends."""
        if close_frame is not None:
            self._close_frame = close_frame
        self._queue.close()
        self._pending.close()

    async def run(self) -> None:
        """The sender: the only task that writes to the websocket, so nothing follows a
        close frame."""
        try:
            try:
                async for text in self._pending:
                    await self._send({"type": "websocket.send", "text": text})
            except trio.ClosedResourceError:
                pass  # abandoned
            if self._close_frame is not None:
                code, reason = self._close_frame
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
        finally:
            self.done.set()
