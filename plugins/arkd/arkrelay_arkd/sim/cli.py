"""``arkrelay sim arkd``: run the arkd simulator until Ctrl-C."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click
import trio

from arkrelay_core.shutdown import cancel_on_signals

from .batch import ARKD_SESSION_DURATION, BatchConfig
from .esplora import ChainError, EsploraChain
from .ledger import Ledger
from .server import ArkdSimulator

__all__ = ["arkd"]

log = logging.getLogger(__name__)


@click.command("arkd")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=7070, show_default=True, help="0 picks a free port")
@click.option(
    "--rest-port",
    type=int,
    default=7071,
    show_default=True,
    help="arkd's REST interface (arkd serves it on its gRPC port; grpcio cannot share "
    "one); 0 picks a free port, -1 turns it off",
)
@click.option("--network", default="regtest", show_default=True)
@click.option(
    "--exit-delay", type=int, default=512, show_default=True, help="unilateral exit delay"
)
@click.option(
    "--board",
    multiple=True,
    metavar="PUBKEY:SATS",
    help="fund an x-only key at start (repeatable)",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="keep the ledger in FILE (JSON, written on every change, reloaded on start; it "
    "holds the server keys and every accepted offchain tx); default: in memory",
)
@click.option(
    "--esplora",
    metavar="URL",
    help="an Esplora API (e.g. `arkrelay sim chain`): boarding coins and commitment txs "
    "live there; without it batches cannot run",
)
@click.option(
    "--session-duration",
    type=float,
    default=BatchConfig.session_duration,
    show_default=True,
    help=f"seconds per batch session (arkd's default is {ARKD_SESSION_DURATION:g})",
)
@click.option(
    "--wallet-funds",
    type=int,
    default=100_000_000,
    show_default=True,
    help="sats the server wallet asks the chain's faucet for at start (0: none)",
)
def arkd(
    host: str,
    port: int,
    rest_port: int,
    network: str,
    exit_delay: int,
    board: tuple[str, ...],
    state: Path | None,
    esplora: str | None,
    session_duration: float,
    wallet_funds: int,
) -> None:
    """Run an arkd simulator (ArkService, IndexerService) on HOST:PORT over gRPC, and on
    HOST:REST_PORT over arkd's REST interface."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    chain = EsploraChain(esplora) if esplora else None
    sim = ArkdSimulator(
        Ledger(network=network, unilateral_exit_delay=exit_delay, state_file=state),
        host=host,
        chain=chain,
        batch_config=BatchConfig(session_duration=session_duration),
    )
    if chain is not None and wallet_funds > 0:
        try:
            txid, vout = sim.batches.fund_wallet(wallet_funds)
        except ChainError as exc:
            raise click.ClickException(
                f"cannot fund the server wallet at {esplora}: {exc}"
            ) from exc
        click.echo(f"server wallet {sim.batches.wallet.address} funded: {txid}:{vout}")
    for item in board:
        owner, sep, amount = item.partition(":")
        if not sep or not amount.isdigit():
            raise click.BadParameter(f"{item!r} is not PUBKEY:SATS", param_hint="--board")
        vtxo = sim.board(owner, int(amount))
        click.echo(f"boarded {amount} sats for {owner}: {vtxo.txid}:{vtxo.vout}")
    trio.run(_serve, sim, port, None if rest_port < 0 else rest_port)
    click.echo("stopped")


async def _serve(sim: ArkdSimulator, port: int, rest_port: int | None) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        bound = await nursery.start(functools.partial(sim.serve, port=port, rest_port=rest_port))
        rest = f", REST on {sim.rest_url}" if rest_port is not None else ""
        click.echo(f"arkd simulator ready on {sim.host}:{bound} (ArkService, IndexerService){rest}")
