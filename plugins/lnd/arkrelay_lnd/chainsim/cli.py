"""``arkrelay sim chain``: the simulated bitcoin chain as its own process, serving
Esplora's REST API on loopback (docs/simulators.md, "Chain")."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click
import trio

from arkrelay_core.shutdown import cancel_on_signals

from .ledger import Ledger
from .server import serve

__all__ = ["chain"]


@click.command("chain")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="default: a free port")
@click.option(
    "--fee-floor",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    metavar="SAT_PER_VB",
    help="bitcoind's -minrelaytxfee: a transaction (or package) paying less is refused",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="keep the chain in FILE (JSON), reloaded on start; default: in memory",
)
def chain(host: str, port: int, fee_floor: float, state_file: Path | None) -> None:
    """Run the simulated bitcoin chain (Esplora REST API) until Ctrl-C."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    ledger = Ledger(fee_floor=fee_floor, state_file=state_file)
    trio.run(_serve, ledger, host, port)
    click.echo("stopped")


async def _serve(ledger: Ledger, host: str, port: int) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        url = await nursery.start(functools.partial(serve, ledger, host, port))
        click.echo(f"height {ledger.height}, fee floor {ledger.fee_floor} sat/vB")
        click.echo(f"chain simulator ready on {url}")
