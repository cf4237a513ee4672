"""How many events a second the endpoint accepts (verified, stored, acked), beside the
raw BIP340 verify rate of the same machine.

    uv run python bench/endpoint_accept.py --connections 8 --events 4000

The endpoint runs in this process; the K client connections run in a child process (its
own trio loop) so that client-side framing does not share the endpoint's CPU. Events are
signed before the clock starts. Prints figures only: speed is measured here, never
asserted in a test.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import trio
from arkrelay_nostr.endpoint import EndpointTransport
from arkrelay_nostr.settings import EndpointSettings
from trio_websocket import connect_websocket_url

from arkrelay_core.config import HostPort
from arkrelay_core.interfaces import InboundEvent, PluginContext
from arkrelay_core.nostr import Event, encode_event, generate_secret_key, sign_event, verify_event

CLIENT_TIMEOUT_S = 600


def sign_batches(connections: int, events: int) -> list[list[Event]]:
    """``events`` kind-1 events split over ``connections``, each batch by its own key."""
    per = math.ceil(events / connections)
    batches = []
    for c in range(connections):
        secret = generate_secret_key()
        count = min(per, events - c * per)
        batches.append([sign_event(secret, kind=1, content=f"bench {c}:{i}") for i in range(count)])
    return batches


# ---------------------------------------------------------------------------- client side


async def _one_client(url: str, frames: list[str], results: list[tuple[int, int]]) -> None:
    async with trio.open_nursery() as nursery:
        ws = await connect_websocket_url(
            nursery, url, message_queue_size=256, max_message_size=1 << 20
        )

        async def send_all() -> None:
            for frame in frames:
                await ws.send_message(frame)

        nursery.start_soon(send_all)
        accepted = rejected = 0
        while accepted + rejected < len(frames):
            message = json.loads(await ws.get_message())
            if message[0] == "OK":
                accepted += message[2] is True
                rejected += message[2] is not True
        results.append((accepted, rejected))
        await ws.aclose()


async def run_clients(url: str, batches: list[list[str]]) -> None:
    results: list[tuple[int, int]] = []
    start, cpu = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        for frames in batches:
            nursery.start_soon(_one_client, url, frames, results)
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "cpu": time.process_time() - cpu,
                "accepted": sum(a for a, _ in results),
                "rejected": sum(r for _, r in results),
            }
        )
    )


# ---------------------------------------------------------------------------- endpoint side


def verify_rate(events: list[Event], seconds: float = 2.0) -> float:
    """``arkrelay_core.nostr.verify_event`` calls per second over the same events."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for event in events[:1000]:
            verify_event(event)
        done += min(len(events), 1000)
    return done / elapsed


async def run_benchmark(batches: list[list[Event]], data_dir: Path, frames_file: Path) -> None:
    events = sum(len(batch) for batch in batches)
    context = PluginContext(
        network="regtest",
        data_dir=data_dir,
        listening_pubkeys=lambda: [],
        sign_event=lambda *args: None,
    )
    settings = EndpointSettings(
        listen=HostPort("127.0.0.1", 0),
        events_per_second_per_connection=1e9,
        events_per_second_per_pubkey=1e9,
        max_stored_events=max(100, events),
    )
    transport = EndpointTransport(settings, context)
    send, _receive = trio.open_memory_channel[InboundEvent](1)
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.serve, send)
        cpu = time.process_time()
        with trio.fail_after(CLIENT_TIMEOUT_S):
            client = await trio.run_process(
                [sys.executable, __file__, "--client", transport.url, str(frames_file)],
                capture_stdout=True,
            )
        # Includes the client's connection set-up and teardown: an upper bound.
        endpoint_cpu = time.process_time() - cpu
        stats = transport.statistics()
        nursery.cancel_scope.cancel()
    result = json.loads(client.stdout)
    accept = result["accepted"] / result["elapsed"]
    verify = verify_rate([e for batch in batches for e in batch])
    print(f"connections          {len(batches)}")
    print(
        f"events               {events} ({result['accepted']} accepted, "
        f"{result['rejected']} rejected, {stats['events_stored']} stored)"
    )
    print(f"elapsed              {result['elapsed']:.2f} s")
    print(
        f"CPU busy             endpoint {endpoint_cpu / result['elapsed']:.0%}, "
        f"clients {result['cpu'] / result['elapsed']:.0%} (of one core each)"
    )
    print(f"endpoint accepts     {accept:,.0f} events/s")
    print(f"verify_event alone   {verify:,.0f} events/s")
    print(f"ratio                {accept / verify:.2f} (endpoint / bare verification)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=4, metavar="K")
    parser.add_argument("--events", type=int, default=4000, metavar="N", help="in total")
    parser.add_argument("--client", nargs=2, metavar=("URL", "FRAMES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, frames_file = args.client
        trio.run(run_clients, url, json.loads(Path(frames_file).read_text()))
        return
    if args.connections < 1 or args.events < args.connections:
        parser.error("need at least one connection and one event per connection")
    batches = sign_batches(args.connections, args.events)
    frames = [[f'["EVENT",{encode_event(e).decode()}]' for e in batch] for batch in batches]
    with tempfile.TemporaryDirectory() as tmp:
        frames_file = Path(tmp) / "frames.json"
        frames_file.write_text(json.dumps(frames))
        trio.run(run_benchmark, batches, Path(tmp), frames_file)


if __name__ == "__main__":
    main()
