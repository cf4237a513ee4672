"""Transfer ceremonies end to end: throughput, latency, CPU and memory of the gateway,
beside the crypto floor one ceremony cannot go below.

    uv run --all-packages python bench/ceremony.py --wallets 8 --ceremonies 500
    uv run --all-packages python bench/ceremony.py --rate 200 --ceremonies 2000
    uv run --all-packages python bench/ceremony.py --ceremonies 0 --open-sessions 10000

The gateway runs in this process on the embedded defaults (its own relay endpoint, the
arkd simulator; SQLite unless ``--database``). K simulated wallets (reference wallets,
``bench/ceremony_wallets.py``) run in a child process with their own trio loop, so their
signing and framing do not share the gateway's CPU. Each ceremony is an ``ark:transfer``:
intent, two signing challenges (ark tx, checkpoint), the 31340 confirmation. Prints
figures only: speed is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib.util
import json
import logging
import math
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import coincurve
import msgspec
import sqlalchemy as sa
import trio
from sqlalchemy.engine import make_url

from arkrelay_core.ceremony.records import FINAL
from arkrelay_core.config import load_config_text
from arkrelay_core.config.embedded import embedded_config_text
from arkrelay_core.gateway import Gateway
from arkrelay_core.nostr import bip340, key_cache_statistics
from arkrelay_core.plugins import PluginRegistry, load_plugins
from arkrelay_core.serving import serving
from arkrelay_core.store import create_engine_for
from arkrelay_core.store.models import CeremonySession

HERE = Path(__file__).resolve().parent
WALLETS_SCRIPT = HERE / "ceremony_wallets.py"
RELAY_PROCESS = HERE.parent / "plugins" / "nostr" / "tests" / "relay_process.py"

ASSET = "gBTC"
AMOUNT = 1_000
FEE = 10  # the default flat fee schedule's transfer fee
#: Sats each held session's VTXO carries (it is never spent).
HOLD_SATS = 10_000
#: What one transfer ceremony needs from the gateway, at the least: verify the intent,
#: the two signing responses and the two signatures they carry; sign the two challenges
#: and the confirmation. ECDH is per wallet, not per ceremony (the shared key is cached).
FLOOR_VERIFIES = 5
FLOOR_SIGNS = 3
#: A reference wallet holds at most 1024 unread messages; a holder gets one per session.
MAX_HELD_PER_WALLET = 1000
STEP_TIMEOUT = "1h"
#: Frames kept per allocation with --trace-memory (deep enough to reach gateway code).
TRACE_FRAMES = 12
PHASE_TIMEOUT = 3600.0

# ---------------------------------------------------------------------------- measuring


def rss_kib() -> tuple[int, int]:
    """(current, peak) resident set size of this process, in KiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far."""
    # The command name (field 2) may hold spaces; the fields after its ")" do not.
    after = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(after[11]) + int(after[12])) / os.sysconf("SC_CLK_TCK")


class GcClock:
    """Collections of the cyclic garbage collector, and the time they took, per generation."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        generation = info["generation"]
        self.count[generation] += 1
        self.seconds[generation] += time.perf_counter() - self._began

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # guest time is already counted in user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Floor(msgspec.Struct, frozen=True):
    """Seconds per operation, timed with coincurve (libsecp256k1) in this process."""

    verify: float
    sign: float
    ecdh: float

    def per_ceremony(self, ecdh_per_ceremony: float) -> float:
        return (
            FLOOR_VERIFIES * self.verify + FLOOR_SIGNS * self.sign + ecdh_per_ceremony * self.ecdh
        )


def _rate(operation: Callable[[int], object], seconds: float) -> float:
    """Seconds per call of ``operation(i)``, over about ``seconds``."""
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for i in range(200):
            operation(i)
        done += 200
    return elapsed / done


def crypto_floor(seconds: float = 1.0) -> Floor:
    keys = [coincurve.PrivateKey() for _ in range(200)]
    xonly = [coincurve.PublicKeyXOnly.from_secret(k.secret) for k in keys]
    peers = [k.public_key for k in reversed(keys)]
    messages = [os.urandom(32) for _ in range(200)]
    sigs = [k.sign_schnorr(m, os.urandom(32)) for k, m in zip(keys, messages, strict=True)]
    return Floor(
        verify=_rate(lambda i: xonly[i].verify(sigs[i], messages[i]), seconds),
        sign=_rate(lambda i: keys[i].sign_schnorr(messages[i], os.urandom(32)), seconds),
        ecdh=_rate(lambda i: keys[i].ecdh(peers[i].format()), seconds),
    )


# ---------------------------------------------------------------------------- the gateway


def _into(text: str, header: str, lines: str) -> str:
    """Add ``lines`` to the TOML table that starts with ``header``."""
    marker = header + "\n"
    if marker not in text:
        raise RuntimeError(f"the embedded config has no {header} table")
    return text.replace(marker, marker + lines, 1)


def config_text(
    registry: PluginRegistry,
    data_dir: Path,
    *,
    database: str | None,
    relay: str | None,
    ark_target: str | None,
) -> str:
    """The embedded defaults with every limit a benchmark would hit lifted."""

    def installed(role: str, name: str) -> bool:
        return name in registry.names(role)

    text, missing = embedded_config_text(
        installed,
        listen="127.0.0.1:0",
        data_dir=str(data_dir),
        relays=[relay] if relay else (),
        http_listen="127.0.0.1:0",
    )
    if missing:
        raise SystemExit(
            f"needs every reference plugin; not installed: {', '.join(missing)} "
            "(run it with `uv run --all-packages`)"
        )
    if database is not None:
        text = _into(text, "[gateway]", f"database = {json.dumps(database)}\n")
    if ark_target is not None:
        text = _into(text, "[backend.ark]", f"target = {json.dumps(ark_target)}\n")
    if relay is None:
        text = _into(
            text,
            "[transport.endpoint]",
            "events_per_second_per_connection = 1e9\n"
            "events_per_second_per_pubkey = 1e9\n"
            "max_stored_events = 10000000\n",
        )
    return (
        text
        + f"""
[ceremony]
requests_per_minute = 1000000000
max_open_sessions = 1000000000
step_timeout = "{STEP_TIMEOUT}"
session_timeout = "{STEP_TIMEOUT}"
"""
    )


@contextlib.asynccontextmanager
async def external_arkd(
    boards: list[tuple[str, int]], log_file: Path
) -> AsyncIterator[tuple[str, int, list[str]]]:
    """The arkd simulator in its own process (in memory, like an arkd elsewhere), every
    VTXO boarded at start; yields its target, pid and the boarded outpoints in order."""
    # --vtxo-min-amount 1: the gateway's fees are outputs below dust, which arkd's default
    # (the dust limit) refuses.
    command = [sys.executable, "-m", "arkrelay_arkd.sim", "--port", "0", "--rest-port", "0"]
    command += ["--vtxo-min-amount", "1"]
    for owner, sats in boards:
        command += ["--board", f"{owner}:{sats}"]
    async with trio.open_nursery() as nursery:
        with log_file.open("ab") as log:
            process = await nursery.start(
                functools.partial(
                    trio.run_process, command, stdout=subprocess.PIPE, stderr=log, check=False
                )
            )
        lines = Lines(process.stdout)
        outpoints: list[str] = []
        target = None
        while target is None:
            line = await lines.next()
            if line.startswith("boarded "):
                outpoints.append(line.rsplit(" ", 1)[1])
            elif ready := re.search(r"ready on (\S+) ", line):
                target = ready.group(1)
        try:
            yield target, process.pid, outpoints
        finally:
            process.terminate()


class Lines:
    """Lines of text from a trio receive stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def next(self) -> str:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(1 << 16)
            if not chunk:
                raise RuntimeError("the child process ended early (see its output above)")
            self.buffer += chunk
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer = bytearray(rest)
        return line.decode()


# ---------------------------------------------------------------------------- the run


class Options(msgspec.Struct, frozen=True):
    wallets: int
    chains: int
    ceremonies: int
    rate: float | None
    open_sessions: int
    session_wallets: int
    checks: str
    database: str | None
    relay: str | None
    ark_sim: str
    floor_seconds: float
    trace_memory: bool


class Keys:
    """Every key of the run, made up front (an external arkd boards them at start)."""

    def __init__(self, options: Options) -> None:
        self.wallets = [bip340.generate_secret_key() for _ in range(options.wallets)]
        holders = options.session_wallets if options.open_sessions else 0
        self.holders = [bip340.generate_secret_key() for _ in range(holders)]
        per_chain = math.ceil(options.ceremonies / (options.wallets * options.chains))
        self.chain_sats = (AMOUNT + FEE) * (per_chain + 1) + 10_000
        self.boards: list[tuple[str, int]] = []
        for secret in self.wallets:
            self.boards += [(_xonly(secret), self.chain_sats)] * options.chains
        if holders:
            per, extra = divmod(options.open_sessions, holders)
            for i, secret in enumerate(self.holders):
                self.boards += [(_xonly(secret), HOLD_SATS)] * (per + (i < extra))


def _xonly(secret: bytes) -> str:
    return bip340.xonly_public_key(secret).hex()


def _plan(options: Options, keys: Keys, outpoints: list[str], url: str, gateway: str) -> bytes:
    owned: dict[str, list[str]] = {}
    for (owner, _), outpoint in zip(keys.boards, outpoints, strict=True):
        owned.setdefault(owner, []).append(outpoint)
    return msgspec.json.encode(
        {
            "url": url,
            "gateway": gateway,
            "wallets": [(s.hex(), owned[_xonly(s)]) for s in keys.wallets],
            "holders": [(s.hex(), owned.get(_xonly(s), [])) for s in keys.holders],
            "ceremonies": options.ceremonies,
            "rate": options.rate,
            "checks": options.checks,
            "amount": AMOUNT,
            "fee": FEE,
            "asset": ASSET,
            "reconnect": options.relay is not None,
        }
    )


async def board_in_process(gateway: Gateway, boards: list[tuple[str, int]]) -> list[str]:
    backend = gateway.components.backends["ark"]
    return [(await backend.board(owner, sats)).vtxo_id for owner, sats in boards]


@contextlib.asynccontextmanager
async def relay_for(options: Options, data_dir: Path) -> AsyncIterator[str | None]:
    """The relay the wallets and gateway meet on: none (the endpoint), the URL given, or
    a `nostr-relay` process started here for the run."""
    if options.relay != "start":
        yield options.relay
        return
    spec = importlib.util.spec_from_file_location("relay_process", RELAY_PROCESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    relay = module.NostrRelay(data_dir / "nostr-relay")
    await trio.to_thread.run_sync(relay.start)
    try:
        yield relay.url
    finally:
        relay.stop()


@contextlib.asynccontextmanager
async def ark_for(
    options: Options, keys: Keys, data_dir: Path
) -> AsyncIterator[tuple[str | None, int | None, list[str]]]:
    if options.ark_sim == "process":
        async with external_arkd(keys.boards, data_dir / "arkd-sim.log") as found:
            yield found
    else:
        yield None, None, []


@contextlib.contextmanager
def fresh_database(server_url: str | None) -> Iterator[str | None]:
    """A new, empty PostgreSQL database on the server ``server_url`` names, dropped
    afterwards: a gateway on a used one would resume the sessions a run left open."""
    if server_url is None:
        yield None
        return
    url = make_url(server_url)
    admin = create_engine_for(url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"arkrelay_bench_{secrets.token_hex(6)}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def run(options: Options) -> None:
    registry = load_plugins()
    keys = Keys(options)
    report = Report(options)
    report.load = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="arkrelay-bench-") as tmp,
        fresh_database(options.database) as database,
    ):
        data_dir = Path(tmp)
        async with (
            relay_for(options, data_dir) as relay,
            ark_for(options, keys, data_dir) as (ark_target, ark_pid, outpoints),
        ):
            config = load_config_text(
                config_text(
                    registry,
                    data_dir,
                    database=database,
                    relay=relay,
                    ark_target=ark_target,
                ),
                source="<bench>",
                settings_resolver=registry.settings_type,
                base_dir=data_dir,
            )
            async with serving(config, registry) as gateway:
                url = relay or gateway.components.transports["endpoint"].url
                if ark_pid is None:
                    began = time.perf_counter()
                    outpoints = await board_in_process(gateway, keys.boards)
                    report.boarding = time.perf_counter() - began
                plan_file = data_dir / "plan.json"
                plan_file.write_bytes(_plan(options, keys, outpoints, url, gateway.identity.pubkey))
                await drive_wallets(options, gateway, plan_file, ark_pid, report)
    report.floor = await trio.to_thread.run_sync(crypto_floor, options.floor_seconds)
    report.print()


async def drive_wallets(
    options: Options, gateway: Gateway, plan_file: Path, ark_pid: int | None, report: Report
) -> None:
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
        cache_before = key_cache_statistics()
        report.rss_start = rss_kib()[0]
        cpu, ark_cpu = time.process_time(), _cpu_of(ark_pid)
        loop_cpu = time.thread_time()
        machine = machine_cpu()
        await say("go")
        with GcClock() as report.gc, trio.fail_after(PHASE_TIMEOUT):
            result = json.loads(await lines.next())
        report.gateway_cpu = time.process_time() - cpu
        report.loop_cpu = time.thread_time() - loop_cpu
        busy, total = machine_cpu()
        report.machine_busy = (busy - machine[0]) / max(1e-9, total - machine[1])
        report.tracked = len(gc.get_objects())
        report.ark_cpu = None if ark_pid is None else _cpu_of(ark_pid) - ark_cpu
        report.ecdh = key_cache_statistics().misses - cache_before.misses
        report.take_ceremonies(result)
        report.rss_after_ceremonies = rss_kib()[0]
        if options.open_sessions:
            if options.trace_memory:
                tracemalloc.start(TRACE_FRAMES)
            gc.collect()
            report.rss_before_open = rss_kib()[0]
            before = tracemalloc.take_snapshot() if options.trace_memory else None
            await say("open")
            with trio.fail_after(PHASE_TIMEOUT):
                report.opened = json.loads(await lines.next())["open"]
            # What is left after the run is what the open sessions hold, not garbage.
            await trio.sleep(1.0)
            gc.collect()
            report.rss_open = rss_kib()[0]
            if before is not None:
                report.memory_growth = tracemalloc.take_snapshot().compare_to(before, "traceback")
                tracemalloc.stop()
            report.open_in_db = await gateway.engine.store.run(_open_sessions)
        await say("quit")
        await process.wait()
    report.peak = rss_kib()[1]


def _cpu_of(pid: int | None) -> float:
    return 0.0 if pid is None else process_cpu(pid)


def _open_sessions(db: Any) -> int:
    return db.scalar(sa.select(sa.func.count()).where(CeremonySession.state.not_in(FINAL)))


# ---------------------------------------------------------------------------- reporting


class Report:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.load = (0.0, 0.0, 0.0)
        self.boarding: float | None = None
        self.gateway_cpu = 0.0
        #: Share of every core of the machine busy while the ceremonies ran (anything
        #: else running on it shows here too).
        self.machine_busy = 0.0
        #: CPU of the thread running the trio loop (the rest: database and gRPC threads).
        self.loop_cpu = 0.0
        self.gc = GcClock()
        self.tracked = 0
        self.ark_cpu: float | None = None
        self.client_cpu = 0.0
        self.elapsed = 0.0
        self.ecdh = 0
        self.results: Counter[str] = Counter()
        self.first: list[float] = []
        self.outcome: list[float] = []
        self.lag: list[float] = []
        self.rss_start = 0
        self.rss_after_ceremonies = 0
        self.rss_before_open = 0
        self.rss_open = 0
        self.open_in_db = 0
        self.opened: dict[str, Any] = {}
        self.memory_growth: list[tracemalloc.StatisticDiff] = []
        self.peak = 0
        self.floor: Floor | None = None

    def take_ceremonies(self, result: dict[str, Any]) -> None:
        self.elapsed = result["elapsed"]
        self.client_cpu = result["cpu"]
        for lag, first, outcome, status in result["ceremonies"]:
            self.results[status] += 1
            self.lag.append(lag)
            if first is not None:
                self.first.append(first)
            if status == "ok":
                self.outcome.append(outcome)

    def print(self) -> None:
        o = self.options
        done = self.results["ok"]
        where = "a nostr-relay process" if o.relay else "the gateway's endpoint"
        offered = f"{o.rate:g} intents/s offered" if o.rate else "flat out"
        print(
            f"machine              {os.cpu_count()} CPUs, Linux {os.uname().release}, "
            f"Python {sys.version.split()[0]}, load {self.load[0]:.2f} at start"
        )
        print(f"database             {o.database or 'SQLite (embedded default)'}")
        print(f"relay                {where}; arkd simulator {o.ark_sim}")
        if o.ceremonies:
            print(
                f"wallets              {o.wallets} x {o.chains} chains, {o.checks} checks, "
                f"{offered}"
            )
        if self.boarding is not None:
            print(f"boarding             {self.boarding:.1f} s (in-process simulator, untimed)")
        if o.ceremonies:
            failed = ", ".join(f"{k} {v}" for k, v in sorted(self.results.items()) if k != "ok")
            print(
                f"ceremonies           {done} of {o.ceremonies} completed"
                + (f" ({failed})" if failed else "")
            )
            print(f"elapsed              {self.elapsed:.2f} s")
            print(f"completed            {done / self.elapsed:,.1f} ceremonies/s")
            if self.first:
                print("intent->challenge    " + _spread(self.first))
            if self.outcome:
                print("intent->31340        " + _spread(self.outcome))
            if o.rate:
                print(
                    f"schedule lag         max {max(self.lag) * 1000:.1f} ms "
                    f"({sum(1 for x in self.lag if x > 0.001)} intents sent >1 ms late)"
                )
            busy = self.gateway_cpu / self.elapsed
            print(
                f"CPU busy             gateway {busy:.0%}, wallets "
                f"{self.client_cpu / self.elapsed:.0%}"
                + (f", arkd {self.ark_cpu / self.elapsed:.0%}" if self.ark_cpu is not None else "")
                + f" (of one core each); machine {self.machine_busy:.0%} of "
                f"{os.cpu_count()} cores"
            )
            if done:
                per = self.gateway_cpu / done
                print(
                    f"CPU per ceremony     gateway {per * 1000:.2f} ms"
                    + (
                        f", arkd {self.ark_cpu / done * 1000:.2f} ms"
                        if self.ark_cpu is not None
                        else ""
                    )
                    + f", wallets {self.client_cpu / done * 1000:.2f} ms"
                )
                print(
                    f"  of which            {self.loop_cpu / done * 1000:.2f} ms in the trio "
                    f"thread; garbage collector {sum(self.gc.seconds) / done * 1000:.2f} ms"
                )
                gcs = ", ".join(
                    f"gen{g} {n} x {t / max(1, n) * 1000:.1f} ms"
                    for g, (n, t) in enumerate(zip(self.gc.count, self.gc.seconds, strict=True))
                )
                print(f"GC collections       {gcs} ({self.tracked:,} objects tracked)")
                if self.floor is not None:
                    f = self.floor
                    ecdh = self.ecdh / done
                    floor = f.per_ceremony(ecdh)
                    print(
                        f"crypto floor         {floor * 1e6:.0f} us/ceremony = "
                        f"{FLOOR_VERIFIES} verify x {f.verify * 1e6:.1f} + {FLOOR_SIGNS} sign x "
                        f"{f.sign * 1e6:.1f} + {ecdh:.3f} ECDH x {f.ecdh * 1e6:.1f} us"
                    )
                    print(
                        f"cost / floor         {per / floor:.1f}x (gateway CPU per ceremony "
                        f"over the floor; ceiling {1 / floor:,.0f} ceremonies/s per core)"
                    )
        print(
            f"RSS                  {self.rss_start / 1024:.0f} MiB with wallets connected, "
            f"{self.rss_after_ceremonies / 1024:.0f} MiB after the ceremonies"
        )
        if o.open_sessions:
            opened = self.opened
            per = (self.rss_open - self.rss_before_open) * 1024 / max(1, opened.get("open", 0))
            missing = "".join(f", {opened[k]} {k}" for k in ("refused", "timeout") if opened.get(k))
            print(
                f"open sessions        {opened.get('open', 0)} waiting for their first signature"
                f"{missing} ({self.open_in_db} open in the database), opened in "
                f"{opened['elapsed']:.1f} s ({opened.get('open', 0) / opened['elapsed']:.0f}/s)"
            )
            print(
                f"RSS with them open   {self.rss_open / 1024:.0f} MiB "
                f"({per / 1024:.1f} KiB per open session)"
            )
        print(f"peak RSS             {self.peak / 1024:.0f} MiB")
        if self.memory_growth:
            self._print_growth()

    def _print_growth(self) -> None:
        """Where the memory the open sessions hold was allocated (tracemalloc), biggest
        first, each with the innermost frames of ours (or the allocation itself)."""
        total = sum(d.size_diff for d in self.memory_growth)
        print(f"traced growth        {total / 2**20:.1f} MiB while the sessions opened; largest:")
        for diff in self.memory_growth[:12]:
            frames = [
                f for f in diff.traceback if "/arkrelay" in f.filename or "/bench/" in f.filename
            ]
            shown = (frames or list(diff.traceback))[-3:]
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(shown))
            print(f"  {diff.size_diff / 2**20:7.2f} MiB {diff.count_diff:+8d} blocks  {where}")


def _spread(values: list[float]) -> str:
    return (
        "  ".join(f"p{p} {percentile(values, p) * 1000:.1f} ms" for p in (50, 95, 99))
        + f"  max {max(values) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wallets", type=int, default=8, metavar="K", help="wallets running the ceremonies"
    )
    parser.add_argument(
        "--chains",
        type=int,
        default=4,
        metavar="C",
        help="ceremonies each wallet runs at once (one VTXO chain each)",
    )
    parser.add_argument("--ceremonies", type=int, default=500, metavar="N", help="in total")
    parser.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="offer R intents/s (default: every chain back to back, flat out)",
    )
    parser.add_argument(
        "--open-sessions",
        type=int,
        default=10_000,
        metavar="M",
        help="then open M sessions and leave their first challenge unanswered (0: skip)",
    )
    parser.add_argument(
        "--session-wallets",
        type=int,
        default=100,
        metavar="H",
        help="wallets the open sessions are spread over",
    )
    parser.add_argument(
        "--checks",
        choices=("careful", "minimal"),
        default="careful",
        help="what the wallets check before they sign",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="a PostgreSQL server, postgresql+psycopg://USER@HOST/DB: the run makes a "
        "fresh database on it and drops it afterwards (default: SQLite)",
    )
    parser.add_argument(
        "--relay",
        nargs="?",
        const="start",
        metavar="URL",
        help="meet on this relay instead of the endpoint; without URL, start nostr-relay",
    )
    parser.add_argument(
        "--ark-sim",
        choices=("inprocess", "process"),
        default="inprocess",
        help="the arkd simulator in the gateway (embedded default) or its own process",
    )
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="trace allocations while the sessions open and print where they went (slow)",
    )
    parser.add_argument("--floor-seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.wallets < 1 or args.chains < 1 or args.ceremonies < 0 or args.open_sessions < 0:
        parser.error("wallets and chains must be at least 1, counts not negative")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
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
        open_sessions=args.open_sessions,
        session_wallets=args.session_wallets,
        checks=args.checks,
        database=args.database,
        relay=args.relay,
        ark_sim=args.ark_sim,
        floor_seconds=args.floor_seconds,
        trace_memory=args.trace_memory,
    )
    trio.run(run, options)


if __name__ == "__main__":
    main()
