"""A gRPC relay between the gateway and a daemon that SIGKILLs the gateway the
moment a chosen call has taken effect at the daemon.

The relay forwards every call byte for byte. When the daemon answers the n-th call of a
watched method, the relay kills the gateway *before* handing the answer over: the call
happened (the daemon's state changed) and the gateway never learned its result, the
harshest moment a crash can hit. It is how the crash matrix kills "right after SubmitTx"
without any fault hook inside the gateway.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from types import ModuleType

import grpc

__all__ = ["KillProxy", "streaming_methods"]

log = logging.getLogger(__name__)


def streaming_methods(*modules: ModuleType) -> frozenset[str]:
    """Full names (``/pkg.Service/Method``) of the server-streaming methods the generated
    ``*_pb2`` modules declare: the relay must forward those as streams."""
    found = set()
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.server_streaming:
                    found.add(f"/{service.full_name}/{method.name}")
    return frozenset(found)


def _raw(data: bytes) -> bytes:
    return data


class KillProxy:
    """Listen on a free loopback port and forward to ``upstream`` (``host:port``)."""

    def __init__(
        self,
        upstream: str,
        streaming: Iterable[str],
        *,
        upstream_cert: bytes | None = None,
        tls: tuple[bytes, bytes] | None = None,
    ) -> None:
        """``upstream_cert``: the daemon's TLS certificate (PEM), when it speaks TLS;
        ``tls``: (key, certificate) PEMs this relay then serves with itself."""
        self.upstream = upstream
        self.upstream_cert = upstream_cert
        self.tls = tls
        self.streaming = frozenset(streaming)
        self.port = 0
        self.calls: Counter[str] = Counter()
        self._armed: dict[str, tuple[int, Callable[[], None]]] = {}
        self._lost: dict[str, grpc.StatusCode] = {}
        self._fired: list[str] = []
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._server: grpc.Server | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def fired(self) -> list[str]:
        with self._lock:
            return list(self._fired)

    def arm(self, method: str, action: Callable[[], None], *, nth: int | None = None) -> None:
        """Run ``action`` (kill the gateway) when the ``nth`` call of ``method`` counted
        from now (default: the next one) has been answered by the daemon."""
        with self._lock:
            self._armed[method] = (self.calls[method] + (nth or 1), action)

    def arm_lost(
        self,
        method: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.DEADLINE_EXCEEDED,
        nth: int | None = None,
    ) -> None:
        """The answer is lost, the caller lives: when the ``nth`` call of ``method`` has
        been answered by the daemon, the caller gets ``code`` instead (a timeout by
        default; UNAVAILABLE, a dropped connection, invites the caller to retry)."""
        with self._lock:
            self._armed[method] = (self.calls[method] + (nth or 1), lambda: None)
            self._lost[method] = code

    def start(self) -> None:
        if self.upstream_cert is None:
            self._channel = grpc.insecure_channel(self.upstream)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=self.upstream_cert)
            self._channel = grpc.secure_channel(self.upstream, credentials)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        server.add_generic_rpc_handlers([_Forward(self)])
        if self.tls is None:
            self.port = server.add_insecure_port("127.0.0.1:0")
        else:
            credentials = grpc.ssl_server_credentials([self.tls])
            self.port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(None).wait()
            self._server = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self) -> KillProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _count(self, method: str) -> Callable[[], None] | None:
        """Count an answered call; the action to run if this was the armed one."""
        with self._lock:
            self.calls[method] += 1
            armed = self._armed.get(method)
            if armed is None or self.calls[method] != armed[0]:
                return None
            del self._armed[method]
            self._fired.append(method)
            return armed[1]

    def forward_unary(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        assert self._channel is not None
        call = self._channel.unary_unary(
            method, request_serializer=_raw, response_deserializer=_raw
        )
        try:
            answer = call(
                request,
                metadata=context.invocation_metadata(),
                timeout=context.time_remaining(),
            )
        except grpc.RpcError as exc:
            # The daemon's error details (arkd's ErrorDetails) ride in the trailers.
            context.set_trailing_metadata(exc.trailing_metadata() or ())
            context.abort(exc.code(), exc.details() or "")
        action = self._count(method)
        if action is not None:
            with self._lock:
                lost = self._lost.pop(method, None)
            if lost is not None:
                log.warning("kill proxy: %s answered; the answer is lost (%s)", method, lost)
                context.abort(lost, "the answer was lost on the way")
            log.warning("kill proxy: %s answered; killing the gateway before it hears", method)
            action()
            context.abort(grpc.StatusCode.UNAVAILABLE, "the caller was killed")
        return answer

    def forward_stream(
        self, method: str, request: bytes, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        assert self._channel is not None
        call = self._channel.unary_stream(
            method, request_serializer=_raw, response_deserializer=_raw
        )
        upstream = call(
            request, metadata=context.invocation_metadata(), timeout=context.time_remaining()
        )
        context.add_callback(upstream.cancel)
        first = True
        try:
            for message in upstream:
                # A stream has taken effect once the daemon says something on it (a
                # payment it reports in flight).
                action = self._count(method) if first else None
                first = False
                if action is not None:
                    log.warning("kill proxy: %s under way; killing the gateway", method)
                    action()
                    upstream.cancel()
                    return
                yield message
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                context.abort(exc.code(), exc.details() or "")


class _Forward(grpc.GenericRpcHandler):
    def __init__(self, proxy: KillProxy) -> None:
        self.proxy = proxy

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = details.method
        proxy = self.proxy
        if method in proxy.streaming:
            return grpc.unary_stream_rpc_method_handler(
                lambda request, context: proxy.forward_stream(method, request, context),
                request_deserializer=_raw,
                response_serializer=_raw,
            )
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: proxy.forward_unary(method, request, context),
            request_deserializer=_raw,
            response_serializer=_raw,
        )
