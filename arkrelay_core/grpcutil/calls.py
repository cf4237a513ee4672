"""Unary gRPC calls run from trio: deadline, transient-only retries, circuit breaker.

The blocking grpcio stub runs in a worker thread (bounded by a CapacityLimiter). A failure
leaves only as the ArkRelay exception the plugin's ``map_error`` chooses; retries happen
only for failures after which the same call may succeed unchanged, and a timed-out call
that may have changed something (``idempotent=False``) is never repeated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import grpc
import msgspec
import trio

from ..config import Duration
from ..errors import ArkRelayError
from .breaker import CircuitBreaker

__all__ = ["Backoff", "CallPolicy", "Caller", "ErrorMapper", "is_transient", "was_answered"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``map_error(exc, method)``: the exception to raise for a failed call (``from exc``).
ErrorMapper = Callable[[grpc.RpcError, str], ArkRelayError]

#: After these the same call may succeed unchanged. DEADLINE_EXCEEDED is transient, but a
#: mutating call that timed out may have been applied, so only idempotent calls retry on it.
_TRANSIENT = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
)
#: Codes that say the call failed rather than that the daemon refused it.
_UNANSWERED = _TRANSIENT | {
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class CallPolicy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Deadlines, retries and the breaker: the part of a daemon plugin's settings that
    this module reads. Plugins' settings structs inherit it (flat in the config)."""

    #: Deadline of every unary call.
    call_timeout: Duration = Duration(10)
    #: Extra attempts after a transient failure (UNAVAILABLE; DEADLINE_EXCEEDED on reads).
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3
    backoff_initial: Duration = Duration(0.2)
    backoff_max: Duration = Duration(5)
    breaker_failures: Annotated[int, msgspec.Meta(ge=1)] = 5
    breaker_reset: Duration = Duration(60)
    max_concurrent_calls: Annotated[int, msgspec.Meta(ge=1, le=64)] = 8


def _status_code(exc: grpc.RpcError) -> grpc.StatusCode:
    return exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN


def is_transient(exc: grpc.RpcError, *, idempotent: bool) -> bool:
    code = _status_code(exc)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED and not idempotent:
        return False
    return code in _TRANSIENT


def was_answered(exc: grpc.RpcError) -> bool:
    """Whether the daemon itself answered (a refusal), rather than the call failing."""
    return isinstance(exc, grpc.Call) and exc.code() not in _UNANSWERED


class Backoff:
    """Exponential delays between ``initial`` and ``maximum`` seconds; ``reset()`` after a
    success."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial

    async def sleep(self) -> None:
        await trio.sleep(self.next())


class Caller:
    """Runs a daemon's unary calls with deadline, retries, breaker and error mapping.

    :param daemon: the daemon's name, for logs and the breaker.
    :param map_error: turns a failed call into the plugin's exception.
    :param unavailable: the exception for a channel that cannot be used at all.
    :param answered: whether a failed call was the daemon's own refusal (which proves it
        is up, so the breaker counts it as a success); ``was_answered`` by default.
    :param metadata: sent on every call (``("macaroon", hex)``); streams read
        ``caller.metadata`` too.
    """

    def __init__(
        self,
        daemon: str,
        policy: CallPolicy,
        *,
        map_error: ErrorMapper,
        unavailable: Callable[[str], ArkRelayError],
        answered: Callable[[grpc.RpcError], bool] = was_answered,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.daemon = daemon
        self._policy = policy
        self._map_error = map_error
        self._unavailable = unavailable
        self._answered = answered
        self.breaker = CircuitBreaker(
            daemon, failures=policy.breaker_failures, reset_after=policy.breaker_reset.seconds
        )
        self.limiter = trio.CapacityLimiter(policy.max_concurrent_calls)
        self._metadata = list(metadata)
        self.calls = 0
        self.failures = 0
        self.retries = 0
        #: Per method: how long whole calls took, retries included (see ``statistics``).
        self._latency: dict[str, _Latency] = {}

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
        deadline: float | None = None,
    ) -> T:
        """Call ``stub_method(request)``; ``idempotent`` allows retrying after a timeout.
        ``deadline`` (seconds) overrides the policy's, for calls the daemon holds longer."""
        if deadline is None:
            deadline = self._policy.call_timeout.seconds
        started = time.monotonic()
        try:
            return await self._attempts(method, stub_method, request, idempotent, deadline)
        finally:
            latency = self._latency.get(method)
            if latency is None:
                latency = self._latency[method] = _Latency()
            latency.observe(time.monotonic() - started)

    async def _attempts(
        self,
        method: str,
        stub_method: Callable[..., T],
        request: Any,
        idempotent: bool,
        deadline: float,
    ) -> T:
        policy = self._policy
        backoff = Backoff(policy.backoff_initial.seconds, policy.backoff_max.seconds)
        attempt = 0
        while True:
            self.breaker.check()
            self.calls += 1
            try:
                result = await trio.to_thread.run_sync(
                    self._invoke, stub_method, request, deadline, limiter=self.limiter
                )
            except grpc.RpcError as exc:
                transient = is_transient(exc, idempotent=idempotent)
                if not transient and self._answered(exc):
                    self.breaker.record_success()
                    raise self._map_error(exc, method) from exc
                self.failures += 1
                if not transient or attempt >= policy.retries:
                    # One failed call is one failure for the breaker, however many
                    # attempts it took.
                    self.breaker.record_failure()
                    raise self._map_error(exc, method) from exc
                attempt += 1
                self.retries += 1
                delay = backoff.next()
                log.info(
                    "%s %s failed (%s); retry %d in %.2fs",
                    self.daemon,
                    method,
                    _status_code(exc).name,
                    attempt,
                    delay,
                )
                await trio.sleep(delay)
                continue
            except ValueError as exc:
                # grpcio raises ValueError for a closed channel.
                self.failures += 1
                self.breaker.record_failure()
                raise self._unavailable(f"{self.daemon} {method}: {exc}") from exc
            self.breaker.record_success()
            return result

    def _invoke(self, stub_method: Callable[..., T], request: Any, deadline: float) -> T:
        return stub_method(request, timeout=deadline, metadata=self.metadata)

    def statistics(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "failures": self.failures,
            "retries": self.retries,
            "breaker": self.breaker.statistics(),
            "latency": {method: lat.statistics() for method, lat in self._latency.items()},
        }


#: Upper bounds (seconds) of the call-latency buckets.
LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Latency:
    """A cumulative histogram of one method's call durations (Prometheus' shape)."""

    def __init__(self) -> None:
        self.counts = [0] * len(LATENCY_BOUNDS)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.sum += seconds
        for i, bound in enumerate(LATENCY_BOUNDS):
            if seconds <= bound:
                self.counts[i] += 1

    def statistics(self) -> dict[str, object]:
        return {
            "buckets": dict(zip(LATENCY_BOUNDS, self.counts, strict=True)),
            "count": self.count,
            "sum": self.sum,
        }
