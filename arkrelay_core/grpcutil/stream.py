"""Server streams read in a worker thread and handed to trio through a memory channel.

grpcio's stream iterator blocks, so a thread reads it and passes each item to trio with
``trio.from_thread.run`` (which waits while the bounded channel is full: backpressure
reaches the gRPC flow control instead of a queue). Cancelling the trio side cancels the
call, which ends the iterator, so the thread always finishes before ``pump`` returns.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import grpc
import trio

__all__ = ["pump"]

log = logging.getLogger(__name__)

T = TypeVar("T")


async def pump(
    call: grpc.Call,
    handle: Callable[[T], Awaitable[None]],
    *,
    limiter: trio.CapacityLimiter | None = None,
) -> None:
    """Feed every item of the server stream ``call`` to ``handle`` (run in trio) until the
    stream ends or the caller is cancelled. Stream errors are raised as grpc.RpcError."""
    iterator: Iterator[T] = call  # type: ignore[assignment]

    failed: list[grpc.RpcError] = []

    def read() -> None:
        try:
            for item in iterator:
                # Runs under this call's cancel scope: if we are cancelled while the
                # channel is full, this raises Cancelled here instead of blocking.
                trio.from_thread.run(handle, item)
        except grpc.RpcError as exc:
            if not (isinstance(exc, grpc.Call) and exc.code() is grpc.StatusCode.CANCELLED):
                # Raised below, outside the nursery, so callers need no except*.
                failed.append(exc)

    async def cancel_call_on_exit() -> None:
        try:
            await trio.sleep_forever()
        finally:
            call.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancel_call_on_exit)
        # Not abandoned on cancellation: the thread ends once cancel_call_on_exit has
        # cancelled the call, and we wait for it, so no reader thread outlives us.
        await trio.to_thread.run_sync(read, limiter=limiter)
        nursery.cancel_scope.cancel()
    if failed:
        raise failed[0]
