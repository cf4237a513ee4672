"""arkd's REST interface for the simulator: an ASGI app over the same servicers as gRPC.

Each request is routed by ``routes.Router``, bound into its request message
(``protojson``), handed to the servicer the gRPC server also uses (``restcall``), and
answered as arkd's gateway (meshapi/grpc-api-gateway v0.1.0, gateway/mux.go and
errors.go) answers:

- a unary reply is the response message in protojson, 200;
- an error is the ``google.rpc.Status`` in protojson (``code``, ``message``, ``details``
  with arkd's ``ark.v1.ErrorDetails``), under the HTTP status of its gRPC code;
- a streaming RPC answers only a request that accepts ``text/event-stream`` (else 501,
  "Streaming Method Not Allowed"), then sends each message as an SSE ``data:`` line, a
  mid-stream error as ``event: failure``, and the end of the stream as ``id: EOS``,
  ``event: EOS``;
- an unknown path is 404 (code 5, "Not Found"), a known path under another method 405
  (code 12, "Method Not Allowed").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import trio
from google.rpc import code_pb2, status_pb2

from . import protojson
from .restcall import Aborted, CallContext, StreamItem, call_unary, pump_stream
from .routes import Route, RouteMatch, Router

__all__ = ["RestApp", "http_status"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: gRPC's default largest message; the gateway forwards nothing bigger.
MAX_BODY = 4 * 1024 * 1024
#: Messages a stream may hold between the servicer and a slow HTTP reader.
STREAM_BUFFER = 16
#: Worker threads for unary calls, and (separately) for open streams.
UNARY_THREADS = 8
STREAM_THREADS = 32

# gateway/errors.go HTTPStatusFromCode.
_HTTP_STATUS = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}


# The headers arkd's gateway forwards as gRPC metadata (internal/interface/grpc/
# service.go, customMatcher), lower-cased as ASGI gives them.
_FORWARDED = {
    b"x-macaroon": "macaroon",
    b"x-build-version": "x-build-version",
    b"x-sdk-version": "x-sdk-version",
    b"x-digest": "x-digest",
}


def http_status(grpc_code: int) -> int:
    return _HTTP_STATUS.get(grpc_code, 500)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class RestApp:
    """The ASGI app; ``servicers`` maps a service name ("ArkService", "IndexerService")
    to the servicer object the gRPC server uses for it."""

    def __init__(self, servicers: dict[str, Any], router: Router | None = None) -> None:
        self.servicers = servicers
        self.router = router or Router()
        self._unary_threads = trio.CapacityLimiter(UNARY_THREADS)
        self._stream_threads = trio.CapacityLimiter(STREAM_THREADS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        found = self.router.match(scope["method"], scope["path"])
        if found is None and self.router.knows_path(scope["path"]):
            status = status_pb2.Status(code=code_pb2.UNIMPLEMENTED, message="Method Not Allowed")
            await _error(send, status, http=405)
            return
        if found is None:
            await _error(send, status_pb2.Status(code=code_pb2.NOT_FOUND, message="Not Found"))
            return
        try:
            request = await self._bind(found, scope, receive)
        except protojson.BindError as exc:
            await _error(send, status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(exc)))
            return
        except _Disconnected:
            return
        except _TooLarge:
            status = status_pb2.Status(
                code=code_pb2.RESOURCE_EXHAUSTED, message="request body too large"
            )
            await _error(send, status)
            return
        method = getattr(self.servicers[found.route.service], found.route.rpc)
        metadata = tuple(
            (_FORWARDED[name], value.decode("latin-1"))
            for name, value in scope.get("headers", ())
            if name in _FORWARDED
        )
        ctx = CallContext(peer=_peer(scope), metadata=metadata)
        if found.route.streaming:
            await self._stream(method, request, ctx, scope, receive, send)
            return
        try:
            response = await call_unary(method, request, ctx, self._unary_threads)
        except Aborted as exc:
            await _error(send, exc.status)
            return
        await _respond(send, 200, _json(protojson.message_to_json(response)))

    async def _bind(self, found: RouteMatch, scope: Scope, receive: Receive) -> Any:
        route: Route = found.route
        request = route.request_type()
        body = await _read_body(receive)
        if route.body:
            protojson.message_from_json(body, request)
        protojson.bind_path(request, found.params)
        if not route.body:
            query = scope.get("query_string", b"").decode("latin-1")
            pairs = parse_qsl(query, keep_blank_values=True)
            protojson.bind_query(request, pairs, skip=found.params)
        return request

    async def _stream(
        self,
        method: Callable[[Any, Any], Any],
        request: Any,
        ctx: CallContext,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        wants_sse = any(
            name == b"accept" and b"text/event-stream" in value
            for name, value in scope.get("headers", ())
        )
        to_http, from_servicer = trio.open_memory_channel[StreamItem](STREAM_BUFFER)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump_stream, method, request, ctx, to_http, self._stream_threads)
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            try:
                async with from_servicer:
                    await _forward(from_servicer, send, wants_sse=wants_sse)
            finally:
                ctx.cancel()
                nursery.cancel_scope.cancel()


async def _forward(
    items: trio.MemoryReceiveChannel[StreamItem], send: Send, *, wants_sse: bool
) -> None:
    # Until the servicer sends headers or a first message, an error is an HTTP error,
    # as the gateway's stream.Header() fails for a call that ends before its headers.
    first = await _next(items)
    if first is None:
        return
    kind, value = first
    if kind == "error":
        await _error(send, value)
        return
    if not wants_sse:
        status = status_pb2.Status(
            code=code_pb2.UNIMPLEMENTED, message="Streaming Method Not Allowed"
        )
        await _error(send, status)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
            ],
        }
    )
    while first is not None:
        kind, value = first
        if kind == "message":
            await _sse(send, data=_json(protojson.message_to_json(value)))
        elif kind == "error":
            await _sse(send, event=b"failure", data=_json(protojson.message_to_json(value)))
            break
        elif kind == "end":
            await _sse(send, id_=b"EOS", event=b"EOS", data=b"")
            break
        first = await _next(items)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _next(items: trio.MemoryReceiveChannel[StreamItem]) -> StreamItem | None:
    try:
        return await items.receive()
    except trio.EndOfChannel:
        return None


async def _sse(send: Send, *, data: bytes, event: bytes = b"", id_: bytes = b"") -> None:
    frame = b""
    if id_:
        frame += b"id: " + id_ + b"\n"
    if event:
        frame += b"event: " + event + b"\n"
    frame += b"data: " + data + b"\n\n"
    await send({"type": "http.response.body", "body": frame, "more_body": True})


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    """The client left before its request body arrived; there is no one to answer."""


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _error(send: Send, status: status_pb2.Status, *, http: int | None = None) -> None:
    body = protojson.message_to_json(status)
    await _respond(send, http or http_status(status.code), _json(body))


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return f"ipv4:{client[0]}:{client[1]}" if client else ""


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
