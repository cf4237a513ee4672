"""One gateway process on SQLite against N gateway processes on one PostgreSQL, back to
back, figures side by side.

    uv run --all-packages python bench/ceremony_compare.py --gateways 2 \
        --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres \
        -- --ceremonies 300 --open-sessions 0

Runs ``bench/ceremony.py`` once per column (in child processes, one after the other,
``--rounds`` times over, interleaved so a change in the machine's other load falls on
every column alike), with the arguments after ``--`` given to each, and prints each
run's own output, then one table of the headline figures (``ceremony.py --json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CEREMONY = Path(__file__).resolve().parent / "ceremony.py"


def columns(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    found = [("1 x SQLite", [])]
    if args.single_postgres:
        found.append(("1 x PostgreSQL", ["--database", args.database]))
    found.append(
        (
            f"{args.gateways} x PostgreSQL",
            ["--gateways", str(args.gateways), "--database", args.database],
        )
    )
    return found


def run_one(extra: list[str], common: list[str], json_file: Path) -> dict[str, Any]:
    command = [sys.executable, str(CEREMONY), *common, *extra, "--json", str(json_file)]
    print("$ " + " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)
    print(flush=True)
    return json.loads(json_file.read_text())


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(heads: list[str], results: list[dict[str, Any]]) -> None:
    names: list[str] = []
    for figures in results:
        names += [name for name in figures if name not in names]
    # Every process's CPU together, whichever runs had it; the rest in first-seen order.
    first_cpu = next((i for i, n in enumerate(names) if _per_process(n)), len(names))
    group = {n: 1 if _per_process(n) else (0 if i < first_cpu else 2) for i, n in enumerate(names)}
    names.sort(key=group.__getitem__)
    width = max(len(n) for n in names) + 2
    print("".ljust(width) + "".join(h.rjust(18) for h in heads))
    for name in names:
        print(name.ljust(width) + "".join(cell(r.get(name)).rjust(18) for r in results))


def _per_process(name: str) -> bool:
    return name.startswith("CPU ") and "total" not in name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", type=int, default=2, metavar="N")
    parser.add_argument(
        "--database",
        required=True,
        metavar="URL",
        help="the PostgreSQL server (each run makes a fresh database on it)",
    )
    parser.add_argument(
        "--single-postgres",
        action="store_true",
        help="also one gateway process on PostgreSQL (the database's share apart)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="each column this many times")
    parser.add_argument("common", nargs="*", help="after --: arguments for every run")
    args = parser.parse_args()
    heads, results = [], []
    with tempfile.TemporaryDirectory(prefix="arkrelay-compare-") as tmp:
        for round_ in range(1, args.rounds + 1):
            for i, (head, extra) in enumerate(columns(args)):
                heads.append(head if args.rounds == 1 else f"{head} #{round_}")
                results.append(run_one(extra, args.common, Path(tmp) / f"{round_}-{i}.json"))
    table(heads, results)


if __name__ == "__main__":
    main()
