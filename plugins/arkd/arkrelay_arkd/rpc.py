"""Calling arkd: a channel (TLS, macaroon), and unary calls run from trio.

Every unary call runs the blocking grpcio stub in a worker thread (bounded by a
CapacityLimiter) with a deadline, retries transient failures with exponential backoff,
sits behind the circuit breaker, and leaves here only as an ArkRelay exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
import trio

from arkrelay_core.errors import BackendUnavailable

from .breaker import CircuitBreaker
from .errors import is_transient, map_rpc_error
from .settings import ArkdSettings

__all__ = ["Caller", "open_channel"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Keep idle channels alive through NATs and notice dead peers on long streams.
_CHANNEL_OPTIONS: Sequence[tuple[str, Any]] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    # grpcio's own reconnect backoff would otherwise outlast our retries after a restart.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)


def open_channel(settings: ArkdSettings, target: str) -> grpc.Channel:
    """A channel to ``target`` as the settings say: plaintext, or TLS with an optional
    pinned certificate; a configured macaroon rides on every call."""
    if not settings.tls:
        if settings.macaroon is not None:
            log.warning("a macaroon is configured for plaintext arkd at %s; sending it", target)
        return grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
    root = settings.tls_cert.read_bytes() if settings.tls_cert is not None else None
    credentials = grpc.ssl_channel_credentials(root_certificates=root)
    if settings.macaroon is not None:
        macaroon = settings.macaroon.reveal()
        credentials = grpc.composite_channel_credentials(
            credentials,
            grpc.metadata_call_credentials(
                lambda _context, callback: callback((("macaroon", macaroon),), None)
            ),
        )
    options = list(_CHANNEL_OPTIONS)
    if settings.tls_server_name:
        options.append(("grpc.ssl_target_name_override", settings.tls_server_name))
    return grpc.secure_channel(target, credentials, options=options)


class Caller:
    """Runs unary calls with deadline, retries, breaker and error mapping."""

    def __init__(self, settings: ArkdSettings, breaker: CircuitBreaker) -> None:
        self._settings = settings
        self.breaker = breaker
        self.limiter = trio.CapacityLimiter(settings.max_concurrent_calls)
        self._metadata: list[tuple[str, str]] = []
        if settings.macaroon is not None and not settings.tls:
            self._metadata.append(("macaroon", settings.macaroon.reveal()))
        self.calls = 0
        self.failures = 0
        self.retries = 0

    def set_header(self, key: str, value: str) -> None:
        self._metadata = [(k, v) for k, v in self._metadata if k != key] + [(key, value)]

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._metadata)

    async def call(
        self,
        method: str,
        stub_method: Callable[..., T],
        request: Any,
        *,
        idempotent: bool,
    ) -> T:
        """Call ``stub_method(request)``; ``idempotent`` allows retrying after a timeout."""
        settings = self._settings
        delay = settings.backoff_initial.seconds
        attempt = 0
        while True:
            self.breaker.check()
            self.calls += 1
            try:
                result = await trio.to_thread.run_sync(
                    self._invoke, stub_method, request, limiter=self.limiter
                )
            except grpc.RpcError as exc:
                transient = is_transient(exc, idempotent=idempotent)
                if not transient and _answered(exc):
                    self.breaker.record_success()
                    raise map_rpc_error(exc, method) from exc
                self.failures += 1
                if not transient or attempt >= settings.retries:
                    # One failed call is one failure for the breaker, however many
                    # attempts it took.
                    self.breaker.record_failure()
                    raise map_rpc_error(exc, method) from exc
                attempt += 1
                self.retries += 1
                log.info(
                    "arkd %s failed (%s); retry %d in %.2fs", method, _code(exc), attempt, delay
                )
                await trio.sleep(delay)
                delay = min(delay * 2, settings.backoff_max.seconds)
                continue
            except ValueError as exc:
                # grpcio raises ValueError for a closed channel.
                self.failures += 1
                self.breaker.record_failure()
                raise BackendUnavailable(f"arkd {method}: {exc}") from exc
            self.breaker.record_success()
            return result

    def _invoke(self, stub_method: Callable[..., T], request: Any) -> T:
        return stub_method(
            request, timeout=self._settings.call_timeout.seconds, metadata=self.metadata
        )

    def statistics(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "failures": self.failures,
            "retries": self.retries,
            "breaker": self.breaker.statistics(),
        }


def _code(exc: grpc.RpcError) -> str:
    return exc.code().name if isinstance(exc, grpc.Call) else type(exc).__name__


def _answered(exc: grpc.RpcError) -> bool:
    """Whether the daemon itself answered (a refusal), rather than the call failing."""
    if not isinstance(exc, grpc.Call):
        return False
    return exc.code() not in {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
