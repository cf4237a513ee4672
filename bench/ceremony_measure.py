"""What ``bench/ceremony.py`` measures with: CPU and memory of processes read from /proc,
the garbage collector's clock, percentiles, and the crypto floor of a ceremony."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import coincurve
import msgspec
import sqlalchemy as sa
import trio

from arkrelay_core.protocol import SessionState
from arkrelay_core.store import create_engine_for

#: What one transfer ceremony needs from the gateway, at the least: verify the intent,
#: the two signing responses and the two signatures they carry; sign the two challenges
#: and the confirmation. ECDH is per wallet, not per ceremony (the shared key is cached).
FLOOR_VERIFIES = 5
FLOOR_SIGNS = 3
#: Roles of the processes whose CPU is reported; GATEWAY's count toward the gateway's cost.
GATEWAY, ENDPOINT = "gateway", "endpoint"


def _status_kib(pid: int | str, *fields: str) -> list[int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in fields:
            found[name] = int(value.split()[0])
    return [found[f] for f in fields]


def rss_kib(pid: int | str = "self") -> tuple[int, int]:
    """(current, peak) resident set size of a process (this one by default), in KiB."""
    current, peak = _status_kib(pid, "VmRSS", "VmHWM")
    return current, peak


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far."""
    # The command name (field 2) may hold spaces; the fields after its ")" do not.
    after = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(after[11]) + int(after[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every core."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # guest time is already counted in user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


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


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Floor(msgspec.Struct, frozen=True):
    """CPU seconds per operation, timed with coincurve (libsecp256k1) in this process."""

    verify: float
    sign: float
    ecdh: float

    def per_ceremony(self, ecdh_per_ceremony: float) -> float:
        return (
            FLOOR_VERIFIES * self.verify + FLOOR_SIGNS * self.sign + ecdh_per_ceremony * self.ecdh
        )


def _rate(operation: Callable[[int], object], seconds: float) -> float:
    """CPU seconds per call of ``operation(i)``, over about ``seconds`` of wall time.

    CPU time, as the gateway's cost is: on a shared machine the wall time also counts
    whatever ran while this thread waited for a core."""
    done, start, cpu = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - start < seconds:
        for i in range(200):
            operation(i)
        done += 200
    return (time.thread_time() - cpu) / done


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

    async def drain(self) -> None:
        """Read and drop the rest, so the child never blocks on a full pipe."""
        while await self.stream.receive_some(1 << 16):
            pass


def count_open(database: str) -> int:
    """Sessions not in a final state, read from the database itself."""
    engine = create_engine_for(database)
    try:
        with engine.connect() as db:
            rows = db.execute(sa.text("select state, count(*) from sessions group by state"))
            return sum(n for state, n in rows if not SessionState(state).is_final)
    finally:
        engine.dispose()


def database_cpu(database: str) -> dict[int, float] | None:
    """CPU seconds so far of each PostgreSQL backend serving ``database``, by pid (the
    server runs on this machine in these runs); None for SQLite, whose work is done in
    the gateway's own process."""
    if not database.startswith("postgres"):
        return None
    engine = create_engine_for(database)
    try:
        with engine.connect() as db:
            pids = db.scalars(
                sa.text(
                    "select pid from pg_stat_activity "
                    "where datname = current_database() and pid <> pg_backend_pid()"
                )
            ).all()
    finally:
        engine.dispose()
    found = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):  # a backend that just ended
            found[pid] = process_cpu(pid)
    return found


def write_json(path: str, figures: dict[str, object]) -> None:
    Path(path).write_text(json.dumps(figures, indent=1))
