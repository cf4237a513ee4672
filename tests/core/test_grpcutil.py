"""arkrelay_core.grpcutil against a real grpcio server on loopback: retries only for
transient failures, one breaker failure per failed call, refusals as answers, the breaker's
states on trio's clock, and a stream whose reader ends when the caller is cancelled."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import trio
import trio.testing

from arkrelay_core.codes import ErrorCode
from arkrelay_core.config import Duration
from arkrelay_core.errors import ArkRelayError, BackendError, BackendUnavailable, CircuitOpen
from arkrelay_core.grpcutil import (
    Backoff,
    Caller,
    CallPolicy,
    CircuitBreaker,
    is_transient,
    open_channel,
    pump,
)


class Script:
    """What the test server answers next: a list of status codes (OK = success)."""

    def __init__(self) -> None:
        self.answers: list[grpc.StatusCode] = []
        self.calls = 0
        self.stream_open = threading.Event()
        self.stream_closed = threading.Event()

    def unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        code = self.answers.pop(0) if self.answers else grpc.StatusCode.OK
        if code is not grpc.StatusCode.OK:
            context.abort(code, f"scripted {code.name}")
        return b"pong:" + request

    def stream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self.stream_open.set()
        context.add_callback(self.stream_closed.set)
        n = 0
        while context.is_active():
            n += 1
            yield str(n).encode()


@pytest.fixture
def served() -> Iterator[tuple[Script, grpc.Channel]]:
    script = Script()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "test.Svc",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(script.unary),
            "Stream": grpc.unary_stream_rpc_method_handler(script.stream),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = open_channel(f"127.0.0.1:{port}", tls=False)
    yield script, channel
    channel.close()
    server.stop(None)


def _map(exc: grpc.RpcError, method: str) -> ArkRelayError:
    if is_transient(exc, idempotent=True):
        return BackendUnavailable(method)
    return BackendError(method, code=ErrorCode.INTERNAL)


def _caller(**policy: object) -> Caller:
    fields: dict[str, object] = {"backoff_initial": Duration(0.01), "backoff_max": Duration(0.02)}
    fields.update(policy)
    return Caller("test", CallPolicy(**fields), map_error=_map, unavailable=BackendUnavailable)  # type: ignore[arg-type]


async def test_transient_failures_are_retried_and_refusals_are_not(served) -> None:  # type: ignore[no-untyped-def]
    script, channel = served
    unary = channel.unary_unary("/test.Svc/Unary")
    caller = _caller(retries=3)
    script.answers = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    assert await caller.call("Unary", unary, b"a", idempotent=False) == b"pong:a"
    assert (script.calls, caller.retries) == (3, 2)

    script.answers = [grpc.StatusCode.INVALID_ARGUMENT]
    with pytest.raises(BackendError) as refused:
        await caller.call("Unary", unary, b"b", idempotent=True)
    assert refused.value.code == ErrorCode.INTERNAL and script.calls == 4
    assert caller.breaker.statistics()["consecutive_failures"] == 0  # an answer, not a failure

    # A mutating call that timed out may have been applied: never repeated.
    script.answers = [grpc.StatusCode.DEADLINE_EXCEEDED]
    with pytest.raises(BackendError):
        await caller.call("Unary", unary, b"c", idempotent=False)
    assert script.calls == 5

    # Three calls, each timed whole (retries included) into one cumulative histogram.
    latency = caller.statistics()["latency"]["Unary"]  # type: ignore[index]
    assert latency["count"] == 3 and latency["sum"] > 0
    counts = list(latency["buckets"].values())
    assert counts == sorted(counts) and counts[-1] <= 3


async def test_one_failed_call_is_one_breaker_failure_and_the_breaker_opens(served) -> None:  # type: ignore[no-untyped-def]
    script, channel = served
    unary = channel.unary_unary("/test.Svc/Unary")
    caller = _caller(retries=2, breaker_failures=2, breaker_reset=Duration(60))
    script.answers = [grpc.StatusCode.UNAVAILABLE] * 6
    for expected_calls in (3, 6):
        with pytest.raises(BackendUnavailable):
            await caller.call("Unary", unary, b"x", idempotent=True)
        assert script.calls == expected_calls
    assert caller.breaker.state == "open"
    with pytest.raises(CircuitOpen) as open_:
        await caller.call("Unary", unary, b"x", idempotent=True)
    assert open_.value.code == ErrorCode.CIRCUIT_OPEN and script.calls == 6


async def test_breaker_half_open_lets_one_trial_through(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breaker = CircuitBreaker("t", failures=1, reset_after=10)
    breaker.record_failure()
    assert breaker.state == "open"
    await trio.sleep(10)
    assert breaker.state == "half_open"
    breaker.check()  # the trial
    with pytest.raises(CircuitOpen):
        breaker.check()  # only one at a time
    breaker.record_failure()
    assert breaker.state == "open" and breaker.times_opened == 2
    await trio.sleep(10)
    breaker.check()
    breaker.record_success()
    assert breaker.state == "closed"


def test_backoff_doubles_up_to_its_maximum_and_resets() -> None:
    backoff = Backoff(0.5, 2)
    assert [backoff.next() for _ in range(5)] == [0.5, 1, 2, 2, 2]
    backoff.reset()
    assert backoff.next() == 0.5


async def test_cancelling_a_pumped_stream_ends_the_call(served) -> None:  # type: ignore[no-untyped-def]
    script, channel = served
    call = channel.unary_stream("/test.Svc/Stream")(b"")
    received = []
    send, receive = trio.open_memory_channel[bytes](2)  # small: backpressure reaches gRPC

    async def consume() -> None:
        async for item in receive:
            received.append(item)
            if len(received) == 5:
                nursery.cancel_scope.cancel()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await pump(call, send.send)
    assert received[:5] == [b"1", b"2", b"3", b"4", b"5"]
    assert await trio.to_thread.run_sync(script.stream_closed.wait, 5)
