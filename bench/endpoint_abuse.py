"""The relay endpoint under the abuse of issue #17, measured: oversize frames, a flood of
connections that leave with a reset, and far-future events from fresh keys.

    uv run python bench/endpoint_abuse.py
    uv run python bench/endpoint_abuse.py --resets 2500 --spam 1500 --max-stored 500
    uv run python bench/endpoint_abuse.py --unguarded   # hypercorn's websocket as shipped

The endpoint runs in a child process on 127.0.0.1 (port 0, a throwaway data directory,
its file descriptor limit set to 1024 as on a default Linux login), with the gateway's
own events published in it first. This process attacks it over loopback only, in bounded
loops, and reads the child's memory and descriptors from /proc. Prints figures only:
they are measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from trio_websocket import connect_websocket_url

FD_LIMIT = 1024
MB = 1024 * 1024
#: Every network step of the attacker is bounded by this.
STEP_TIMEOUT_S = 60.0
GATEWAY_EVENTS = 5


# ------------------------------------------------------------------------- the endpoint


async def serve(data_dir: Path, max_stored: int, unguarded: bool) -> None:
    if unguarded:  # for comparison: the oversize and reset figures without the guard
        from arkrelay_nostr.endpoint import wsguard

        wsguard.install = lambda: None
    from arkrelay_nostr.endpoint import EndpointTransport
    from arkrelay_nostr.settings import EndpointSettings

    from arkrelay_core.config import HostPort
    from arkrelay_core.interfaces import InboundEvent, PluginContext
    from arkrelay_core.nostr import generate_secret_key, sign_event, xonly_public_key

    secret = generate_secret_key()
    pubkey = xonly_public_key(secret).hex()
    context = PluginContext(
        network="regtest",
        data_dir=data_dir,
        listening_pubkeys=lambda: [pubkey],
        sign_event=lambda kind, content, tags: sign_event(
            secret, kind=kind, content=content, tags=tags
        ),
        instance_name="endpoint",
    )
    settings = EndpointSettings(listen=HostPort("127.0.0.1", 0), max_stored_events=max_stored)
    transport = EndpointTransport(settings, context)
    send, receive = trio.open_memory_channel[InboundEvent](64)

    async def drain() -> None:
        async for _ in receive:
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        await nursery.start(transport.serve, send)
        for i in range(GATEWAY_EVENTS):
            event = sign_event(secret, kind=31340, content=f"outcome {i}", tags=[["d", f"{i}"]])
            await transport.publish(event)
        print(json.dumps({"url": transport.url, "pubkey": pubkey}), flush=True)
        # The parent closes our stdin when it is done (or dies): then we stop.
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        while await stdin.receive_some(1024):
            pass
        print(json.dumps(transport.statistics()), flush=True)
        nursery.cancel_scope.cancel()


# ------------------------------------------------------------------------- measurements


class Child:
    def __init__(self, process: trio.Process, url: str, pubkey: str) -> None:
        self.process = process
        self.url = url
        self.pubkey = pubkey
        host, port = url.removeprefix("ws://").rsplit(":", 1)
        self.address = (host, int(port))

    def status(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024  # kB -> MB
        raise LookupError(field)

    def rss(self) -> int:
        return self.status("VmRSS")

    def peak(self) -> int:
        return self.status("VmHWM")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))


async def fresh_client_seconds(child: Child) -> tuple[float, int]:
    """Seconds from connecting to the EOSE of a REQ for the gateway's events, and how many
    of them came back."""
    start = time.perf_counter()
    with trio.fail_after(STEP_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            ws = await connect_websocket_url(nursery, child.url, max_message_size=4 * MB)
            await ws.send_message(json.dumps(["REQ", "gw", {"authors": [child.pubkey]}]))
            got = 0
            while (message := json.loads(await ws.get_message()))[0] != "EOSE":
                got += message[0] == "EVENT"
            elapsed = time.perf_counter() - start
            await ws.aclose()
    return elapsed, got


async def handshake(address: tuple[str, int]) -> tuple[trio.SocketStream | None, int]:
    """A raw websocket handshake; the stream if accepted, else None, and the HTTP status."""
    stream = await trio.open_tcp_stream(*address)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    await stream.send_all(
        f"GET / HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        data = await stream.receive_some(4096)
        if not data:
            break
        head += data
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    if status == 101:
        return stream, status
    await stream.aclose()
    return None, status


def reset(stream: trio.SocketStream) -> None:
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


# ------------------------------------------------------------------------- the attacks


async def oversize(child: Child, sizes: list[int]) -> dict[str, Any]:
    """Send one frame per size, concurrently, each declaring its full length up front."""
    sent = [0] * len(sizes)

    async def one(i: int, size: int) -> None:
        stream, status = await handshake(child.address)
        assert stream is not None, status
        header = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", size) + b"\0\0\0\0"
        chunk = b"a" * (1 << 16)
        try:
            await stream.send_all(header)
            while sent[i] < size:
                await stream.send_all(chunk)
                sent[i] += len(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        await stream.aclose()

    rss_before, peak_before = child.rss(), child.peak()
    start = time.perf_counter()
    with trio.fail_after(STEP_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            for i, size in enumerate(sizes):
                nursery.start_soon(one, i, size)
    elapsed = time.perf_counter() - start
    await trio.sleep(1.0)
    return {
        "frames_mb": [s // MB for s in sizes],
        "sent_before_cut_mb": [round(s / MB, 1) for s in sent],
        "seconds": round(elapsed, 2),
        "rss_before_mb": rss_before,
        "rss_after_mb": child.rss(),
        "peak_rss_before_mb": peak_before,
        "peak_rss_after_mb": child.peak(),
    }


async def reset_flood(child: Child, total: int, concurrency: int) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    peak_fds = child.fds()
    fds_before = peak_fds
    limiter = trio.CapacityLimiter(concurrency)

    async def one() -> None:
        nonlocal peak_fds
        async with limiter:
            try:
                with trio.fail_after(STEP_TIMEOUT_S):
                    stream, status = await handshake(child.address)
            except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            statuses[status] = statuses.get(status, 0) + 1
            if stream is not None:
                reset(stream)
            peak_fds = max(peak_fds, child.fds())

    during: dict[str, Any] = {}

    async def fresh_client_midway() -> None:
        try:
            seconds, got = await fresh_client_seconds(child)
        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
            during["error"] = repr(exc)
        else:
            during.update(seconds=round(seconds, 3), gateway_events=got)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(total):
            if i == total // 2:
                nursery.start_soon(fresh_client_midway)
            nursery.start_soon(one)
    elapsed = time.perf_counter() - start
    serve_s, served = await fresh_client_seconds(child)
    settle = time.perf_counter()
    # Polling /proc: there is nothing to wait on. Bounded: 40 s is past hypercorn's 30 s.
    while child.fds() > fds_before and time.perf_counter() - settle < 40:  # noqa: ASYNC110
        await trio.sleep(0.05)
    return {
        "connections": total,
        "concurrency": concurrency,
        "statuses": statuses,
        "client_errors": errors,
        "seconds": round(elapsed, 2),
        "fds_before": fds_before,
        "fds_peak_sampled": peak_fds,
        "fresh_client_during_flood": during,
        "fresh_client_served_s": round(serve_s, 3),
        "fresh_client_gateway_events": served,
        "fds_back_to_before_s": round(time.perf_counter() - settle, 2),
    }


async def future_spam(child: Child, count: int) -> dict[str, Any]:
    from arkrelay_core.nostr import encode_event, generate_secret_key, sign_event

    far = 2**53 - 1
    soon = int(time.time()) + 14 * 60  # the most the default skew (15 min) lets in
    frames = []
    for i in range(count):
        created_at = far if i % 2 == 0 else soon - i
        event = sign_event(generate_secret_key(), kind=1, content="", created_at=created_at)
        frames.append(f'["EVENT",{encode_event(event).decode()}]')
    outcomes: dict[str, int] = {}
    per_connection = 20  # the default per-connection rate's burst
    start = time.perf_counter()
    with trio.fail_after(STEP_TIMEOUT_S * 5):
        for first in range(0, count, per_connection):
            async with trio.open_nursery() as nursery:
                ws = await connect_websocket_url(nursery, child.url)
                batch = frames[first : first + per_connection]
                for frame in batch:
                    await ws.send_message(frame)
                for _ in batch:
                    answer = json.loads(await ws.get_message())
                    key = "accepted" if answer[2] else answer[3].split(":", 1)[0]
                    outcomes[key] = outcomes.get(key, 0) + 1
                await ws.aclose()
    elapsed = time.perf_counter() - start
    serve_s, served = await fresh_client_seconds(child)
    return {
        "events": count,
        "half_dated": far,
        "outcomes": outcomes,
        "seconds": round(elapsed, 2),
        "gateway_events_published": GATEWAY_EVENTS,
        "gateway_events_served_after": served,
        "fresh_client_served_s": round(serve_s, 3),
    }


async def attack(args: argparse.Namespace, data_dir: Path) -> None:
    command = [sys.executable, __file__, "--serve", str(data_dir), str(args.max_stored)]
    if args.unguarded:
        command.append("--unguarded")

    def limit_fds() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, hard))

    process = await trio.lowlevel.open_process(command, stdin=-1, stdout=-1, preexec_fn=limit_fds)
    assert process.stdin is not None and process.stdout is not None
    try:
        with trio.fail_after(STEP_TIMEOUT_S):
            line = b""
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some(4096)
        ready = json.loads(line)
        child = Child(process, ready["url"], ready["pubkey"])
        serve_s, served = await fresh_client_seconds(child)
        report: dict[str, Any] = {
            "endpoint": child.url,
            "fd_limit": FD_LIMIT,
            "idle": {
                "rss_mb": child.rss(),
                "fds": child.fds(),
                "fresh_client_s": round(serve_s, 3),
                "gateway_events_served": served,
            },
        }
        report["oversize_one_128mb"] = await oversize(child, [128 * MB])
        report["oversize_four_64mb"] = await oversize(child, [64 * MB] * 4)
        report["reset_flood"] = await reset_flood(child, args.resets, args.concurrency)
        report["future_spam"] = await future_spam(child, args.spam)
        await process.stdin.aclose()
        with trio.fail_after(STEP_TIMEOUT_S):
            rest = b""
            while data := await process.stdout.receive_some(65536):
                rest += data
            await process.wait()
        report["endpoint_statistics"] = json.loads(rest.decode().strip().splitlines()[-1])
        print(json.dumps(report, indent=2))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resets", type=int, default=2500, help="handshake+RST connections")
    parser.add_argument("--concurrency", type=int, default=64, help="of the reset flood")
    parser.add_argument("--spam", type=int, default=1500, help="events from fresh keys")
    parser.add_argument("--max-stored", type=int, default=500, help="max_stored_events")
    parser.add_argument(
        "--unguarded",
        action="store_true",
        help="run the endpoint with hypercorn's websocket stream as shipped (no wsguard)",
    )
    parser.add_argument("--serve", nargs=2, metavar=("DIR", "MAX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve, Path(args.serve[0]), int(args.serve[1]), args.unguarded)
        return
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(attack, args, Path(tmp))


if __name__ == "__main__":
    main()
