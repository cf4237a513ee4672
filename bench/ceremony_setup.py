"""What a run of ``bench/ceremony.py`` is made of: its options, keys and VTXOs, the
gateway's config with every limit a benchmark would hit lifted, the arkd simulator in
its own process, a fresh PostgreSQL database, an external relay."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import math
import re
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import sqlalchemy as sa
import trio
from ceremony_measure import GATEWAY, Lines, rss_kib
from sqlalchemy.engine import make_url

from arkrelay_core.config.embedded import embedded_config_text
from arkrelay_core.gateway import Gateway
from arkrelay_core.nostr import bip340
from arkrelay_core.plugins import PluginRegistry
from arkrelay_core.store import create_engine_for

#: In the repository beside bench/, or under the working directory (the repository root)
#: when a copy of bench/ runs.
RELAY_PROCESS = next(
    (
        path
        for root in (Path(__file__).resolve().parent.parent, Path.cwd())
        if (path := root / "plugins/nostr/tests/relay_process.py").exists()
    ),
    Path("plugins/nostr/tests/relay_process.py"),
)

ASSET = "gBTC"
AMOUNT = 1_000
FEE = 10  # the default flat fee schedule's transfer fee
#: Sats each held session's VTXO carries (it is never spent).
HOLD_SATS = 10_000
#: Above what any ceremony pays, so a VTXO is never too small.
MARGIN_SATS = 10_000
STEP_TIMEOUT = "1h"
#: The role of the simulator's process in the CPU figures.
ARK = "ark"


class Options(msgspec.Struct, frozen=True):
    wallets: int
    chains: int
    ceremonies: int
    #: Intents per second offered with Poisson arrivals; None: every chain back to back.
    rate: float | None
    seed: int | None
    open_sessions: int
    session_wallets: int
    checks: str
    database: str | None
    relay: str | None
    ark_sim: str
    #: Gateway processes on one database (1: the gateway runs in the benchmark's process).
    gateways: int
    floor_seconds: float
    trace_memory: bool
    json_file: str | None


class Keys:
    """Every key and VTXO of the run, made up front (an external arkd boards them at start).

    Flat out, each wallet holds ``chains`` VTXOs, each spent into the next ceremony's
    input. With ``rate``, every intent spends a VTXO of its own (the ceremonies in flight
    are as many as the gateway leaves open, which no fixed set of chains could bound)."""

    def __init__(self, options: Options) -> None:
        self.wallets = [bip340.generate_secret_key() for _ in range(options.wallets)]
        holders = options.session_wallets if options.open_sessions else 0
        self.holders = [bip340.generate_secret_key() for _ in range(holders)]
        if options.rate is None:
            self.chains = options.chains
            per_chain = math.ceil(options.ceremonies / (options.wallets * options.chains))
        else:
            self.chains = max(1, math.ceil(options.ceremonies / options.wallets))
            per_chain = 1
        self.chain_sats = (AMOUNT + FEE) * per_chain + MARGIN_SATS
        self.boards: list[tuple[str, int]] = []
        for secret in self.wallets:
            self.boards += [(_xonly(secret), self.chain_sats)] * self.chains
        if holders:
            per, extra = divmod(options.open_sessions, holders)
            for i, secret in enumerate(self.holders):
                self.boards += [(_xonly(secret), HOLD_SATS)] * (per + (i < extra))


class Served(msgspec.Struct):
    """What serves the wallets in this run, wherever it runs."""

    url: str
    gateway_pubkey: str
    database: str
    #: Other processes measured: name -> (role, pid).
    processes: dict[str, tuple[str, int]]
    #: The gateway runs in this process (its CPU and memory are this process's).
    in_process: bool

    def gateway_rss(self) -> tuple[int, int]:
        """(current, peak) KiB of the gateway: this process, or its processes summed."""
        if self.in_process:
            return rss_kib()
        found = [rss_kib(pid) for role, pid in self.processes.values() if role == GATEWAY]
        return sum(r for r, _ in found), sum(p for _, p in found)


def _xonly(secret: bytes) -> str:
    return bip340.xonly_public_key(secret).hex()


def plan_bytes(options: Options, keys: Keys, outpoints: list[str], url: str, gateway: str) -> bytes:
    """The wallets' plan (``ceremony_wallets.Plan``), as JSON."""
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
            "seed": options.seed,
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
    key_file: Path | None = None,
    instance: str | None = None,
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
    if key_file is not None:
        text = _into(text, "[gateway]", f"key_file = {json.dumps(str(key_file))}\n")
    if ark_target is not None:
        text = _into(text, "[backend.ark]", f"target = {json.dumps(ark_target)}\n")
    if relay is None:
        text = _into(
            text,
            "[transport.endpoint]",
            "events_per_second_per_connection = 1e9\n"
            "events_per_second_per_pubkey = 1e9\n"
            "max_stored_events = 10000000\n"
            "max_connections = 100000\n"
            "max_connections_per_ip = 100000\n",
        )
    named = f"instance = {json.dumps(instance)}\n" if instance else ""
    return (
        text
        + f"""
[ceremony]
{named}requests_per_minute = 1000000000
max_open_sessions = 1000000000
step_timeout = "{STEP_TIMEOUT}"
session_timeout = "{STEP_TIMEOUT}"
"""
    )


class ArkSim(msgspec.Struct):
    """The arkd simulator running in a process of its own."""

    target: str
    pid: int
    #: Every VTXO of the run, in ``Keys.boards`` order.
    outpoints: list[str]
    #: From its launch to ready, every VTXO boarded.
    start_seconds: float


@contextlib.asynccontextmanager
async def external_arkd(boards: list[tuple[str, int]], log_file: Path) -> AsyncIterator[ArkSim]:
    """The arkd simulator in its own process (in memory, like an arkd elsewhere), every
    VTXO boarded at start."""
    # --vtxo-min-amount 1: the gateway's fees are outputs below dust, which arkd's default
    # (the dust limit) refuses.
    command = [sys.executable, "-m", "arkrelay_arkd.sim", "--port", "0", "--rest-port", "0"]
    command += ["--vtxo-min-amount", "1"]
    for owner, sats in boards:
        command += ["--board", f"{owner}:{sats}"]
    began = time.perf_counter()
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
        nursery.start_soon(lines.drain)
        try:
            yield ArkSim(target, process.pid, outpoints, time.perf_counter() - began)
        finally:
            process.terminate()


@contextlib.asynccontextmanager
async def ark_for(options: Options, keys: Keys, data_dir: Path) -> AsyncIterator[ArkSim | None]:
    """The simulator's own process, or None: the gateway runs it in-process."""
    if options.ark_sim == "process":
        async with external_arkd(keys.boards, data_dir / "arkd-sim.log") as found:
            yield found
    else:
        yield None


class Setup(msgspec.Struct):
    """What the run made before any gateway starts."""

    database: str | None
    relay: str | None
    #: The simulator's own process (None: in the gateway, its VTXOs boarded later).
    sim: ArkSim | None

    @property
    def ark_target(self) -> str | None:
        return None if self.sim is None else self.sim.target

    @property
    def outpoints(self) -> list[str]:
        return [] if self.sim is None else self.sim.outpoints

    @property
    def ark(self) -> dict[str, tuple[str, int]]:
        """The simulator's process for the CPU figures, if it has one."""
        return {} if self.sim is None else {"arkd sim": (ARK, self.sim.pid)}
