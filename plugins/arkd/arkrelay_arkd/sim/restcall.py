"""Calling the simulator's gRPC servicers from the REST side.

The servicers are grpcio's synchronous code: they block and take a
``grpc.ServicerContext``. The REST layer runs them in worker threads with
``CallContext``, which stands in for grpcio's context: ``abort`` raises ``Aborted``
carrying the ``google.rpc.Status`` (details included) that grpcio would have sent, and
cancelling it makes ``is_active`` false and runs the callbacks, as a gRPC client going
away does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc
import trio
from google.rpc import code_pb2, status_pb2

__all__ = ["Aborted", "CallContext", "StreamItem", "call_unary", "pump_stream"]

log = logging.getLogger(__name__)

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class Aborted(Exception):
    """The servicer ended the call with a non-OK status."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status


class CallContext:
    """The part of ``grpc.ServicerContext`` the simulator's servicers use."""

    def __init__(self, peer: str = "", metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._peer = peer
        self._metadata = metadata
        self._lock = threading.Lock()
        self._active = True
        self._callbacks: list[Callable[[], None]] = []
        self.code: grpc.StatusCode | None = None
        self.details = ""
        #: Called (in the servicer's thread) when the servicer sends its headers.
        self.on_headers: Callable[[], None] | None = None

    # grpc.ServicerContext -----------------------------------------------------------

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise Aborted(status_pb2.Status(code=code.value[0], message=details))

    def abort_with_status(self, status: grpc.Status) -> NoReturn:
        for key, value in status.trailing_metadata or ():
            if key == _STATUS_DETAILS_KEY:
                raise Aborted(status_pb2.Status.FromString(value))
        raise Aborted(status_pb2.Status(code=status.code.value[0], message=status.details))

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    def is_active(self) -> bool:
        return self._active

    def add_callback(self, callback: Callable[[], None]) -> bool:
        with self._lock:
            if not self._active:
                return False
            self._callbacks.append(callback)
            return True

    def send_initial_metadata(self, metadata: Any) -> None:
        if self.on_headers is not None:
            self.on_headers()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> float | None:
        return None

    # ours ---------------------------------------------------------------------------

    def cancel(self) -> None:
        """The client went away: end the call as grpcio does when its RPC terminates."""
        with self._lock:
            if not self._active:
                return
            self._active = False
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                # grpcio logs a failing termination callback and runs the others.
                log.exception("sim REST: a servicer's termination callback failed")

    def status_after(self, error: BaseException | None) -> status_pb2.Status | None:
        """The status grpcio would send for a call that ended with ``error`` (or none)."""
        if isinstance(error, Aborted):
            return error.status
        if self.code is not None and self.code != grpc.StatusCode.OK:
            return status_pb2.Status(code=self.code.value[0], message=self.details)
        if error is not None:
            # grpcio answers an exception escaping a handler with UNKNOWN and this text.
            return status_pb2.Status(
                code=code_pb2.UNKNOWN, message=f"Exception calling application: {error}"
            )
        return None


def _run_unary(method: Callable[[Any, Any], Any], request: Any, ctx: CallContext) -> Any:
    try:
        response = method(request, ctx)
    except Aborted:
        raise
    except Exception as exc:
        status = ctx.status_after(exc)
        if not isinstance(exc, NotImplementedError):
            log.exception("sim REST: the servicer failed")
        assert status is not None
        raise Aborted(status) from exc
    status = ctx.status_after(None)
    if status is not None:
        raise Aborted(status)
    return response


async def call_unary(
    method: Callable[[Any, Any], Any],
    request: Any,
    ctx: CallContext,
    limiter: trio.CapacityLimiter,
) -> Any:
    """Run a unary servicer method in a worker thread; raises ``Aborted`` for an error."""
    return await trio.to_thread.run_sync(_run_unary, method, request, ctx, limiter=limiter)


#: What the stream pump hands over: ("headers", None), ("message", msg),
#: ("error", Status) or ("end", None).
StreamItem = tuple[str, Any]


async def pump_stream(
    method: Callable[[Any, Any], Iterator[Any]],
    request: Any,
    ctx: CallContext,
    send: trio.MemorySendChannel[StreamItem],
    limiter: trio.CapacityLimiter,
) -> None:
    """Run a server-streaming servicer method in a worker thread, handing its messages
    to ``send`` (a bounded channel: a slow reader holds the servicer back). Ends when
    the method does; cancelling ``ctx`` makes it end."""
    token = trio.lowlevel.current_trio_token()

    def put(item: StreamItem) -> bool:
        try:
            trio.from_thread.run(send.send, item, trio_token=token)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.RunFinishedError):
            ctx.cancel()
            return False
        return True

    def run() -> None:
        sent_headers = False

        def headers() -> None:
            nonlocal sent_headers
            if not sent_headers:
                sent_headers = True
                put(("headers", None))

        ctx.on_headers = headers
        try:
            for message in method(request, ctx):
                headers()
                if not put(("message", message)) or not ctx.is_active():
                    return
            status = ctx.status_after(None)
        except Exception as exc:
            if not isinstance(exc, (Aborted, NotImplementedError)):
                log.exception("sim REST: the streaming servicer failed")
            status = ctx.status_after(exc)
        if status is not None:
            put(("error", status))
        else:
            put(("end", None))

    try:
        await trio.to_thread.run_sync(run, limiter=limiter)
    finally:
        ctx.cancel()
        await send.aclose()
