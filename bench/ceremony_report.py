"""The figures of one ``bench/ceremony.py`` run: printed as lines, and as JSON for
``ceremony_compare.py``."""

from __future__ import annotations

import os
import sys
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from ceremony_measure import (
    ENDPOINT,
    FLOOR_SIGNS,
    FLOOR_VERIFIES,
    GATEWAY,
    Floor,
    GcClock,
    percentile,
)
from ceremony_setup import Options


class Report:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.load = (0.0, 0.0, 0.0)
        self.boarding: float | None = None
        #: The simulator process's start, every VTXO boarded (--ark-sim process).
        self.sim_start: float | None = None
        #: (name, role, CPU seconds while the ceremonies ran), one per process.
        self.cpu: list[tuple[str, str, float]] = []
        self.boarded = 0
        #: Share of every core of the machine busy while the ceremonies ran (anything
        #: else running on it shows here too).
        self.machine_busy = 0.0
        #: In-process gateway only: CPU of the trio thread, and the garbage collector.
        self.loop_cpu: float | None = None
        self.gc = GcClock()
        self.tracked = 0
        self.elapsed = 0.0
        #: Seconds from the first intent's due time to the last one's (--rate).
        self.sent_span = 0.0
        self.ecdh: int | None = None
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
        self.sent_span = result.get("sent_span", 0.0)
        for lag, first, outcome, status in result["ceremonies"]:
            self.results[status] += 1
            self.lag.append(lag)
            if first is not None:
                self.first.append(first)
            if status == "ok":
                self.outcome.append(outcome)

    @property
    def done(self) -> int:
        return self.results["ok"]

    def role_cpu(self, role: str) -> float:
        return sum(seconds for _, r, seconds in self.cpu if r == role)

    def floor_seconds(self) -> float | None:
        if self.floor is None or not self.done:
            return None
        return self.floor.per_ceremony((self.ecdh or 0) / self.done)

    def figures(self) -> dict[str, Any]:
        """The run's headline figures, for comparing runs side by side (ms, MiB, /s)."""
        o, done = self.options, self.done
        per = max(1, done)
        floor = self.floor_seconds()
        gateway = self.role_cpu(GATEWAY) / per
        figures: dict[str, Any] = {
            "database": "PostgreSQL" if o.database else "SQLite",
            "gateway processes": o.gateways,
            "offered /s": o.rate or "flat out",
            "completed": f"{done} of {o.ceremonies}",
            "completed /s": done / self.elapsed if self.elapsed else 0.0,
        }
        for name, values in (("intent->challenge", self.first), ("intent->31340", self.outcome)):
            for p in (50, 95, 99):
                figures[f"{name} p{p} ms"] = percentile(values, p) * 1000 if values else None
        for name, _, seconds in self.cpu:
            figures[f"CPU {name} ms/cer"] = seconds / per * 1000
        figures["CPU gateway total ms/cer"] = gateway * 1000
        figures["crypto floor us/cer"] = floor * 1e6 if floor else None
        figures["gateway / floor"] = gateway / floor if floor else None
        figures["machine busy"] = f"{self.machine_busy:.0%}"
        figures["load at start"] = self.load[0]
        return figures

    def print(self) -> None:
        o = self.options
        if o.gateways > 1:
            where = f"a relay endpoint process, {o.gateways} gateway processes on it"
        else:
            where = "a nostr-relay process" if o.relay else "the gateway's endpoint"
        print(
            f"machine              {os.cpu_count()} CPUs, Linux {os.uname().release}, "
            f"Python {sys.version.split()[0]}, load {self.load[0]:.2f} "
            f"{self.load[1]:.2f} {self.load[2]:.2f} at start"
        )
        print(f"database             {o.database or 'SQLite (embedded default)'}")
        print(f"relay                {where}; arkd simulator {o.ark_sim}")
        if o.ceremonies:
            if o.rate:
                load = f"{o.rate:g} intents/s offered, Poisson arrivals, one VTXO per intent"
            else:
                load = f"{o.chains} chains each, flat out"
            print(f"wallets              {o.wallets}, {o.checks} checks, {load}")
        if self.boarding is not None:
            print(f"boarding             {self.boarding:.1f} s (in-process simulator, untimed)")
        if self.sim_start is not None:
            print(
                f"simulator start      {self.sim_start:.1f} s, {self.boarded} VTXOs boarded "
                "(untimed)"
            )
        if o.ceremonies:
            self._print_ceremonies()
        print(
            f"RSS                  {self.rss_start / 1024:.0f} MiB with wallets connected, "
            f"{self.rss_after_ceremonies / 1024:.0f} MiB after the ceremonies"
            + (" (the gateway processes together)" if o.gateways > 1 else "")
        )
        if o.open_sessions:
            self._print_open()
        print(f"peak RSS             {self.peak / 1024:.0f} MiB")
        if self.memory_growth:
            self._print_growth()

    def _print_ceremonies(self) -> None:
        o, done = self.options, self.done
        failed = ", ".join(f"{k} {v}" for k, v in sorted(self.results.items()) if k != "ok")
        print(
            f"ceremonies           {done} of {o.ceremonies} completed"
            + (f" ({failed})" if failed else "")
        )
        print(f"elapsed              {self.elapsed:.2f} s")
        print(f"completed            {done / self.elapsed:,.1f} ceremonies/s")
        if o.rate:
            sent = (o.ceremonies - 1) / self.sent_span if self.sent_span else 0.0
            print(
                f"offered / achieved   {o.rate:g}/s offered, {sent:.1f}/s sent (Poisson draw), "
                f"{done / self.elapsed:.1f}/s completed"
            )
        if self.first:
            print("intent->challenge    " + _spread(self.first))
        if self.outcome:
            print("intent->31340        " + _spread(self.outcome))
        if o.rate:
            print(f"schedule lag         {_spread(self.lag)} (latencies count from the due time)")
        print(
            "CPU busy             "
            + ", ".join(f"{name} {s / self.elapsed:.0%}" for name, _, s in self.cpu)
            + f" (of one core each); machine {self.machine_busy:.0%} of {os.cpu_count()} cores"
        )
        if not done:
            return
        print(
            "CPU per ceremony     "
            + ", ".join(f"{name} {s / done * 1000:.2f} ms" for name, _, s in self.cpu)
        )
        gateway = self.role_cpu(GATEWAY) / done
        endpoint = self.role_cpu(ENDPOINT) / done
        if o.gateways > 1:
            print(
                f"gateway CPU          {gateway * 1000:.2f} ms per ceremony over {o.gateways} "
                f"processes; with the endpoint {(gateway + endpoint) * 1000:.2f} ms"
            )
        if self.loop_cpu is not None:
            print(
                f"  of which            {self.loop_cpu / done * 1000:.2f} ms in the trio "
                f"thread; garbage collector {sum(self.gc.seconds) / done * 1000:.2f} ms"
            )
            gcs = ", ".join(
                f"gen{g} {n} x {t / max(1, n) * 1000:.1f} ms"
                for g, (n, t) in enumerate(zip(self.gc.count, self.gc.seconds, strict=True))
            )
            print(f"GC collections       {gcs} ({self.tracked:,} objects tracked)")
        floor = self.floor_seconds()
        if self.floor is not None and floor:
            f = self.floor
            ecdh = (
                f"{(self.ecdh or 0) / done:.3f} ECDH x {f.ecdh * 1e6:.1f} us"
                if self.ecdh is not None
                else "ECDH uncounted (in other processes; cached per peer)"
            )
            print(
                f"crypto floor         {floor * 1e6:.0f} us/ceremony = "
                f"{FLOOR_VERIFIES} verify x {f.verify * 1e6:.1f} + {FLOOR_SIGNS} sign x "
                f"{f.sign * 1e6:.1f} + {ecdh}"
            )
            print(
                f"cost / floor         {gateway / floor:.1f}x (gateway CPU per ceremony "
                f"over the floor; ceiling {1 / floor:,.0f} ceremonies/s per core)"
            )

    def _print_open(self) -> None:
        opened = self.opened
        count = opened.get("open", 0)
        per = (self.rss_open - self.rss_before_open) * 1024 / max(1, count)
        missing = "".join(f", {opened[k]} {k}" for k in ("refused", "timeout") if opened.get(k))
        print(
            f"open sessions        {count} waiting for their first signature"
            f"{missing} ({self.open_in_db} open in the database), opened in "
            f"{opened['elapsed']:.1f} s ({count / opened['elapsed']:.0f}/s)"
        )
        print(
            f"RSS with them open   {self.rss_open / 1024:.0f} MiB "
            f"({per / 1024:.1f} KiB per open session)"
        )

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
