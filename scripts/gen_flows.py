"""Write docs/flows.md from a run of `arkrelay demo` (see arkrelay_wallet.flows).

uv run --all-packages python scripts/gen_flows.py             # rewrite docs/flows.md
uv run --all-packages python scripts/gen_flows.py --out FILE  # write FILE instead
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import trio
from arkrelay_wallet.demo import Demo, Record, quiet_gateway_logs
from arkrelay_wallet.flows import render_flows

from arkrelay_core.plugins import load_plugins

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "flows.md")
    args = parser.parse_args(argv)
    quiet_gateway_logs()
    records: list[Record] = []
    with tempfile.TemporaryDirectory() as scratch:
        run = Demo(
            load_plugins(), Path(scratch) / "demo", out=lambda _: None, record=records.append
        )
        trio.run(run.run)
    args.out.write_text(render_flows(records, run.names), encoding="utf-8")
    sys.stdout.write(f"wrote {args.out} ({len(records)} events)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
