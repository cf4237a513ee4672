"""``arkrelay sim tapd``: the simulated Lightning network with tapd on every node; and the
asset invoices behind ``arkrelay sim ln invoice <sat> --asset TICKER``.

``serve`` runs lnd's and tapd's simulators over one network and writes both state files
(``sim-ln.json``, ``sim-tapd.json``) into the data dir.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import click
import trio
from arkrelay_lnd.sim import LndSimulator, SimNetwork, read_state
from arkrelay_lnd.sim.cli import drive

from arkrelay_core.config import Duration, HostPort, Secret
from arkrelay_core.shutdown import cancel_on_signals

from .server import STATE_FILE, TapdSimulator

__all__ = ["asset_invoice", "tapd"]

log = logging.getLogger(__name__)


@click.group("tapd")
def tapd() -> None:
    """The simulated tapd (TaprootAssets, Mint, asset channels) over the simulated network."""


@tapd.command("serve")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".arkrelay"),
    show_default=True,
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--mint",
    "mints",
    multiple=True,
    metavar="NODE:TICKER:UNITS",
    help="mint an asset on a node at start, confirmed (repeatable)",
)
def serve(data_dir: Path, host: str, mints: tuple[str, ...]) -> None:
    """Run lnd and tapd simulators (nodes gateway and outside) until Ctrl-C."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    network = SimNetwork()
    lnd = LndSimulator(network, host=host)
    assets = TapdSimulator(network, host=host)
    for item in mints:
        node, _, rest = item.partition(":")
        ticker, _, units = rest.partition(":")
        if node not in network.nodes or not ticker or not units.isdigit():
            raise click.BadParameter(f"{item!r} is not NODE:TICKER:UNITS", param_hint="--mint")
        assets.ledger.mint(network.nodes[node], ticker, int(units), decimals=0, meta=b"")
        _, minted = assets.ledger.finalize(network.nodes[node])
        click.echo(f"minted {units} {ticker} on {node}: {minted[0].asset_id.hex()}")
    if mints:
        network.mine()
    trio.run(_serve, lnd, assets, data_dir)
    click.echo("stopped")


async def _serve(lnd: LndSimulator, assets: TapdSimulator, data_dir: Path) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        await nursery.start(functools.partial(lnd.serve, data_dir=data_dir))
        await nursery.start(functools.partial(assets.serve, data_dir=data_dir))
        for name in lnd.network.nodes:
            click.echo(f"node {name}: lnd {lnd.target(name)} tapd {assets.target(name)}")
        click.echo("tapd simulator ready")


def asset_invoice(
    data_dir: Path, node: str, ticker: str, units: int, *, memo: str, expiry: int
) -> Any:
    """An asset invoice for ``units`` of the asset named ``ticker`` on ``node``."""
    from ..client import TapdBackend
    from ..settings import TapdSettings

    try:
        state = read_state(data_dir, file=STATE_FILE)
    except FileNotFoundError:
        raise click.ClickException(
            f"no tapd simulator state in {data_dir / STATE_FILE}: run `arkrelay sim tapd serve`"
        ) from None
    entry = state.nodes[node]
    backend = TapdBackend(
        TapdSettings(
            target=HostPort.parse(entry.target),
            tls_cert=(data_dir / STATE_FILE).with_suffix(".cert"),
            macaroon=Secret(entry.macaroon),
            asset_channels=True,
            call_timeout=Duration(10),
        )
    )

    async def create(backend: TapdBackend) -> Any:
        known = {b.name: b.asset_id for b in await backend.list_balances()}
        if ticker not in known:
            raise click.ClickException(f"{node} holds no asset named {ticker!r}")
        return await backend.create_asset_invoice(known[ticker], units, memo=memo, expiry=expiry)

    return drive(backend, create)
