"""Where the gateway's worker-thread CPU goes during ``bench/ceremony.py``, per kind of job.

    uv run --all-packages python bench/ceremony_probe.py --ceremonies 300 --open-sessions 0

Runs ``bench/ceremony.py`` (same options) in this process with probes installed: every
job the gateway hands to a worker thread through ``trio.to_thread.run_sync`` (database
transactions, gRPC calls, the endpoint's store writes) is timed with that thread's own
CPU clock and counted with the SQL statements it executed, and so are the in-process
arkd simulator's gRPC handlers (they run on gRPC's own threads; with
``--ark-sim inprocess`` only, the simulator runs apart by default). After the benchmark's
figures it prints one line per kind of job, most CPU first. The trio thread itself is
not covered here: profile it with ``uvx py-spy record --threads``.

The probes cost CPU too: figures taken with them are a little higher than without.
"""

from __future__ import annotations

import argparse
import collections
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import ceremony  # bench/ceremony.py: this script's directory is first on sys.path
import trio
from arkrelay_arkd.sim import indexer as sim_indexer
from arkrelay_arkd.sim import ledger as sim_ledger
from arkrelay_arkd.sim import service as sim_service
from sqlalchemy import event
from sqlalchemy.engine import Engine

#: What the benchmark itself runs in threads: its measuring, not the gateway's work.
BENCH_JOBS = (ceremony.crypto_floor, ceremony.database_cpu, ceremony.count_open)
#: Marks a job that runs inside another one (left out of the total).
NESTED = "  of which: "


class Tally:
    """CPU seconds, wall seconds, calls and SQL statements per kind of job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.rows: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0, 0])

    def statement(self) -> None:
        if getattr(self._local, "counting", False):
            self._local.statements += 1

    def timed(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        outer = getattr(self._local, "counting", False)
        if not outer:
            self._local.counting, self._local.statements = True, 0
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            statements = 0
            if not outer:
                self._local.counting = False
                statements = self._local.statements
            with self._lock:
                row = self.rows[name]
                row[0] += 1
                row[1] += cpu
                row[2] += wall
                row[3] += statements

    def print(self, ceremonies: int) -> None:
        per = max(1, ceremonies)
        print(f"\nworker-thread jobs (per ceremony: over {per} ceremonies)")
        print(
            f"{'job':58} {'calls':>6} {'/cer':>5} {'SQL/call':>8} "
            f"{'CPU ms/call':>11} {'CPU ms/cer':>10} {'wall ms/call':>12}"
        )
        rows = sorted(self.rows.items(), key=lambda item: -item[1][1])
        for name, (calls, cpu, wall, statements) in rows:
            print(
                f"{name[:58]:58} {calls:6.0f} {calls / per:5.1f} {statements / calls:8.1f} "
                f"{cpu / calls * 1000:11.2f} {cpu / per * 1000:10.2f} {wall / calls * 1000:12.2f}"
            )
        total = sum(row[1] for name, row in self.rows.items() if not name.startswith(NESTED))
        print(f"{'total':58} {'':6} {'':5} {'':8} {'':11} {total / per * 1000:10.2f}")
        # A job that ran SQL ran it in one transaction (each is one Store.run, one
        # remember, one outbox write...): these two are the deterministic figures.
        sql_jobs = sum(row[0] for row in self.rows.values() if row[3])
        statements = sum(row[3] for row in self.rows.values())
        print(
            f"database jobs        {sql_jobs / per:.1f} per ceremony (jobs that ran SQL), "
            f"{statements / per:.1f} SQL statements per ceremony"
        )


def job_name(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    name = getattr(fn, "__qualname__", None)
    if isinstance(fn, functools.partial):
        return getattr(fn.func, "__qualname__", repr(fn.func))
    if name == "Store._run" and args:
        return "db " + getattr(args[0], "__qualname__", repr(args[0]))
    if name == "Caller._invoke" and args:
        method = getattr(args[0], "_method", b"?")
        return "grpc " + (method.decode() if isinstance(method, bytes) else str(method))
    return name or repr(fn)


def install(tally: Tally) -> None:
    run_sync = trio.to_thread.run_sync

    async def timed_run_sync(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if fn in BENCH_JOBS:  # the benchmark's own work, not the gateway's
            return await run_sync(fn, *args, **kwargs)
        name = job_name(fn, args)
        return await run_sync(functools.partial(tally.timed, name, fn), *args, **kwargs)

    trio.to_thread.run_sync = timed_run_sync
    event.listen(Engine, "before_cursor_execute", lambda *_: tally.statement())

    def wrap(cls: type, method: str, label: str) -> None:
        original = getattr(cls, method)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            return tally.timed(label, original, *args, **kwargs)

        setattr(cls, method, timed)

    for method in ("SubmitTx", "FinalizeTx"):
        wrap(sim_service.ArkServicer, method, f"arkd sim {method}")
    wrap(sim_indexer.SimIndexerServicer, "GetVtxos", "arkd sim GetVtxos")
    wrap(sim_ledger.Ledger, "_save", f"{NESTED}arkd sim writing its state file")


def main() -> None:
    counted = argparse.ArgumentParser(add_help=False)
    counted.add_argument("--ceremonies", type=int, default=500)
    ceremonies = counted.parse_known_args()[0].ceremonies
    tally = Tally()
    install(tally)
    try:
        ceremony.main()
    finally:
        tally.print(ceremonies)


if __name__ == "__main__":
    main()
