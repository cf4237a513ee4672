"""Transfer ceremonies end to end: throughput, latency, CPU and memory of the gateway,
beside the crypto floor one ceremony cannot go below.

    uv run --all-packages python bench/ceremony.py --ceremonies 300 --open-sessions 0
    uv run --all-packages python bench/ceremony.py --rate 50 --ceremonies 300 --open-sessions 0
    uv run --all-packages python bench/ceremony.py --gateways 2 \
        --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres --open-sessions 0
    uv run --all-packages python bench/ceremony.py --ceremonies 0 --open-sessions 10000

By default the gateway runs in this process on the embedded defaults (its own relay
endpoint; SQLite unless ``--database``) and the arkd simulator in a process of its own;
``--gateways N`` runs N gateway processes on one PostgreSQL database with the endpoint in
its own process instead (``ceremony_scaleout.py``). K simulated wallets (reference
wallets, ``bench/ceremony_wallets.py``) run in a child process with their own trio loop,
so their signing and framing do not share the gateway's CPU. Each ceremony is an
``ark:transfer``: intent, two signing challenges (ark tx, checkpoint), the 31340
confirmation. Prints figures only: speed is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from ceremony_measure import (
    ENDPOINT,
    GATEWAY,
    GcClock,
    Lines,
    count_open,
    crypto_floor,
    database_cpu,
    machine_cpu,
    process_cpu,
    write_json,
)
from ceremony_report import Report
from ceremony_scaleout import gateway_fleet
from ceremony_setup import (
    Keys,
    Options,
    Served,
    Setup,
    ark_for,
    board_in_process,
    config_text,
    fresh_database,
    plan_bytes,
    relay_for,
)

from arkrelay_core.config import load_config_text
from arkrelay_core.nostr import key_cache_statistics
from arkrelay_core.plugins import PluginRegistry, load_plugins
from arkrelay_core.serving import serving

__all__ = ["crypto_floor", "main"]

HERE = Path(__file__).resolve().parent
WALLETS_SCRIPT = HERE / "ceremony_wallets.py"

#: A reference wallet holds at most 1024 unread messages; a holder gets one per session.
MAX_HELD_PER_WALLET = 1000
#: Frames kept per allocation with --trace-memory (deep enough to reach gateway code).
TRACE_FRAMES = 12
PHASE_TIMEOUT = 3600.0

Say = Callable[[str], Awaitable[None]]


async def run(options: Options) -> None:
    registry = load_plugins()
    keys = Keys(options)
    report = Report(options)
    report.boarded = len(keys.boards)
    report.load = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="arkrelay-bench-") as tmp,
        fresh_database(options.database) as database,
    ):
        data_dir = Path(tmp)
        async with (
            relay_for(options, data_dir) as relay,
            ark_for(options, keys, data_dir) as sim,
        ):
            setup = Setup(database, relay, sim)
            if sim is not None:
                report.sim_start = sim.start_seconds
            if options.gateways > 1:
                await _fleet(options, registry, keys, data_dir, report, setup)
            else:
                await _in_process(options, registry, keys, data_dir, report, setup)
    report.floor = await trio.to_thread.run_sync(crypto_floor, options.floor_seconds)
    report.print()
    if options.json_file:
        write_json(options.json_file, report.figures())


async def _fleet(
    options: Options,
    registry: PluginRegistry,
    keys: Keys,
    data_dir: Path,
    report: Report,
    setup: Setup,
) -> None:
    assert setup.database is not None and setup.ark_target is not None  # main() checked
    async with gateway_fleet(
        registry, data_dir, options.gateways, setup.database, setup.ark_target
    ) as fleet:
        processes = {
            name: (ENDPOINT if name == "endpoint" else GATEWAY, pid)
            for name, pid in fleet.processes.items()
        }
        served = Served(
            url=fleet.url,
            gateway_pubkey=fleet.gateway_pubkey,
            database=setup.database,
            processes=processes | setup.ark,
            in_process=False,
        )
        await _drive(options, keys, setup.outpoints, served, data_dir, report)


async def _in_process(
    options: Options,
    registry: PluginRegistry,
    keys: Keys,
    data_dir: Path,
    report: Report,
    setup: Setup,
) -> None:
    config = load_config_text(
        config_text(
            registry,
            data_dir,
            database=setup.database,
            relay=setup.relay,
            ark_target=setup.ark_target,
        ),
        source="<bench>",
        settings_resolver=registry.settings_type,
        base_dir=data_dir,
    )
    async with serving(config, registry) as gateway:
        outpoints = setup.outpoints
        if setup.sim is None:
            began = time.perf_counter()
            outpoints = await board_in_process(gateway, keys.boards)
            report.boarding = time.perf_counter() - began
        served = Served(
            url=setup.relay or gateway.components.transports["endpoint"].url,
            gateway_pubkey=gateway.identity.pubkey,
            database=config.gateway.database,
            processes=setup.ark,
            in_process=True,
        )
        await _drive(options, keys, outpoints, served, data_dir, report)


async def _drive(
    options: Options,
    keys: Keys,
    outpoints: list[str],
    served: Served,
    data_dir: Path,
    report: Report,
) -> None:
    plan_file = data_dir / "plan.json"
    plan_file.write_bytes(plan_bytes(options, keys, outpoints, served.url, served.gateway_pubkey))
    command = [sys.executable, str(WALLETS_SCRIPT), str(plan_file)]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            functools.partial(
                trio.run_process,
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                check=False,
            )
        )
        lines = Lines(process.stdout)

        async def say(word: str) -> None:
            await process.stdin.send_all(word.encode() + b"\n")

        with trio.fail_after(PHASE_TIMEOUT):
            if json.loads(await lines.next()) != "ready":
                raise RuntimeError("the wallets did not get ready")
        await _ceremonies(served, say, lines, report)
        if options.open_sessions:
            await _open(options, served, say, lines, report)
        report.peak = served.gateway_rss()[1]
        await say("quit")
        await process.wait()


async def _ceremonies(served: Served, say: Say, lines: Lines, report: Report) -> None:
    cache_before = key_cache_statistics()
    report.rss_start = served.gateway_rss()[0]
    before = {name: process_cpu(pid) for name, (_, pid) in served.processes.items()}
    database_before = await trio.to_thread.run_sync(database_cpu, served.database)
    cpu, loop_cpu = time.process_time(), time.thread_time()
    machine = machine_cpu()
    await say("go")
    with GcClock() as report.gc, trio.fail_after(PHASE_TIMEOUT):
        result = json.loads(await lines.next())
    cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
    busy, total = machine_cpu()
    report.machine_busy = (busy - machine[0]) / max(1e-9, total - machine[1])
    after = {name: process_cpu(pid) for name, (_, pid) in served.processes.items()}
    database_after = await trio.to_thread.run_sync(database_cpu, served.database)
    if served.in_process:
        report.cpu.append(("gateway", GATEWAY, cpu))
        report.loop_cpu = loop_cpu
        report.tracked = len(gc.get_objects())
        report.ecdh = key_cache_statistics().misses - cache_before.misses
    report.cpu += [
        (name, role, after[name] - before[name]) for name, (role, _) in served.processes.items()
    ]
    if database_before is not None and database_after is not None:
        # A backend that ended during the run is missed; one that began counts whole.
        used = sum(cpu - database_before.get(pid, 0.0) for pid, cpu in database_after.items())
        report.cpu.append(("postgres", "database", used))
    report.cpu.append(("wallets", "wallets", result["cpu"]))
    if not served.in_process:
        report.cpu.append(("bench", "bench", cpu))
    report.take_ceremonies(result)
    report.rss_after_ceremonies = served.gateway_rss()[0]


async def _open(options: Options, served: Served, say: Say, lines: Lines, report: Report) -> None:
    tracing = options.trace_memory and served.in_process
    if tracing:
        tracemalloc.start(TRACE_FRAMES)
    gc.collect()
    report.rss_before_open = served.gateway_rss()[0]
    before = tracemalloc.take_snapshot() if tracing else None
    await say("open")
    with trio.fail_after(PHASE_TIMEOUT):
        report.opened = json.loads(await lines.next())["open"]
    # What is left after the run is what the open sessions hold, not garbage.
    await trio.sleep(1.0)
    gc.collect()
    report.rss_open = served.gateway_rss()[0]
    if before is not None:
        report.memory_growth = tracemalloc.take_snapshot().compare_to(before, "traceback")
        tracemalloc.stop()
    report.open_in_db = await trio.to_thread.run_sync(count_open, served.database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--wallets", type=int, default=8, metavar="K", help="wallets running the ceremonies")
    add(
        "--chains",
        type=int,
        default=4,
        metavar="C",
        help="flat out: ceremonies each wallet runs at once (one VTXO chain each)",
    )
    add("--ceremonies", type=int, default=500, metavar="N", help="in total")
    add(
        "--rate",
        type=float,
        metavar="R",
        help="open arrivals: R intents/s offered, Poisson, each on a VTXO of its own "
        "(default: every chain back to back, flat out)",
    )
    add("--seed", type=int, help="seed of the Poisson arrivals (default: a fresh draw)")
    add(
        "--open-sessions",
        type=int,
        default=10_000,
        metavar="M",
        help="then open M sessions and leave their first challenge unanswered (0: skip)",
    )
    add(
        "--session-wallets",
        type=int,
        default=100,
        metavar="H",
        help="wallets the open sessions are spread over",
    )
    add(
        "--checks",
        choices=("careful", "minimal"),
        default="minimal",
        help="what the wallets check before they sign (minimal: sign payload_to_sign)",
    )
    add(
        "--database",
        metavar="URL",
        help="a PostgreSQL server, postgresql+psycopg://USER@HOST/DB: the run makes a "
        "fresh database on it and drops it afterwards (default: SQLite)",
    )
    add(
        "--gateways",
        type=int,
        default=1,
        metavar="N",
        help="N > 1: N gateway processes on the --database (PostgreSQL), the relay "
        "endpoint in its own process (default 1: the gateway in this process)",
    )
    add(
        "--relay",
        nargs="?",
        const="start",
        metavar="URL",
        help="meet on this relay instead of the endpoint; without URL, start nostr-relay",
    )
    add(
        "--ark-sim",
        choices=("inprocess", "process"),
        default="process",
        help="the arkd simulator in its own process (default) or in the gateway",
    )
    add(
        "--trace-memory",
        action="store_true",
        help="trace allocations while the sessions open and print where they went (slow)",
    )
    add("--json", metavar="FILE", help="also write the headline figures to FILE as JSON")
    add("--floor-seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.wallets < 1 or args.chains < 1 or args.ceremonies < 0 or args.open_sessions < 0:
        parser.error("wallets and chains must be at least 1, counts not negative")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    if args.gateways < 1:
        parser.error("--gateways must be at least 1")
    if args.gateways > 1 and (not args.database or args.relay or args.ark_sim != "process"):
        parser.error(
            "--gateways N > 1 needs --database (PostgreSQL), the endpoint (no --relay) "
            "and --ark-sim process"
        )
    if args.open_sessions and args.open_sessions > args.session_wallets * MAX_HELD_PER_WALLET:
        parser.error(
            f"at most {MAX_HELD_PER_WALLET} held sessions per wallet: raise --session-wallets"
        )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = Options(
        wallets=args.wallets,
        chains=args.chains,
        ceremonies=args.ceremonies,
        rate=args.rate,
        seed=args.seed,
        open_sessions=args.open_sessions,
        session_wallets=args.session_wallets,
        checks=args.checks,
        database=args.database,
        relay=args.relay,
        ark_sim=args.ark_sim,
        gateways=args.gateways,
        floor_seconds=args.floor_seconds,
        trace_memory=args.trace_memory,
        json_file=args.json,
    )
    trio.run(run, options)


if __name__ == "__main__":
    main()
