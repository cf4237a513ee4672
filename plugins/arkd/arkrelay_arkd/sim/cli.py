"""``arkrelay sim arkd``: run the arkd simulator until Ctrl-C."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click
import trio

from arkrelay_core.shutdown import cancel_on_signals

from . import defaults
from .batch import ARKD_SESSION_DURATION, BatchConfig
from .esplora import ChainError, EsploraChain
from .fees import IntentFeePrograms
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
    "--exit-delay",
    type=int,
    default=defaults.UNILATERAL_EXIT_DELAY,
    show_default=True,
    help="ARKD_UNILATERAL_EXIT_DELAY (below 512: blocks; else seconds, rounded down to 512s)",
)
@click.option(
    "--boarding-exit-delay",
    type=int,
    default=defaults.BOARDING_EXIT_DELAY,
    show_default=True,
    help="ARKD_BOARDING_EXIT_DELAY",
)
@click.option(
    "--checkpoint-exit-delay",
    type=int,
    default=defaults.CHECKPOINT_EXIT_DELAY,
    show_default=True,
    help="ARKD_CHECKPOINT_EXIT_DELAY",
)
@click.option(
    "--vtxo-tree-expiry",
    type=int,
    default=defaults.VTXO_TREE_EXPIRY,
    show_default=True,
    help="ARKD_VTXO_TREE_EXPIRY, seconds",
)
@click.option(
    "--vtxo-min-amount",
    type=int,
    default=defaults.VTXO_MIN_AMOUNT,
    show_default=True,
    help="ARKD_VTXO_MIN_AMOUNT (-1: the dust limit)",
)
@click.option(
    "--vtxo-max-amount",
    type=int,
    default=defaults.VTXO_MAX_AMOUNT,
    show_default=True,
    help="ARKD_VTXO_MAX_AMOUNT (-1: no limit)",
)
@click.option(
    "--max-op-return-outputs",
    type=int,
    default=defaults.MAX_OP_RETURN_OUTPUTS,
    show_default=True,
    help="ARKD_MAX_OP_RETURN_OUTS",
)
@click.option(
    "--intent-fee",
    "intent_fees",
    multiple=True,
    metavar="KIND=PROGRAM",
    help="an intent fee program (CEL), KIND one of offchain_input, onchain_input, "
    "offchain_output, onchain_output (repeatable; arkd's UpdateIntentFees)",
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
    help="keep the ledger in FILE (JSON lines: a snapshot, then one line appended per change, "
    "replayed on start; it holds the server keys and every accepted offchain tx); default: "
    "in memory",
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
    boarding_exit_delay: int,
    checkpoint_exit_delay: int,
    vtxo_tree_expiry: int,
    vtxo_min_amount: int,
    vtxo_max_amount: int,
    max_op_return_outputs: int,
    intent_fees: tuple[str, ...],
    board: tuple[str, ...],
    state: Path | None,
    esplora: str | None,
    session_duration: float,
    wallet_funds: int,
) -> None:
    """Run an arkd simulator (ArkService, IndexerService) on HOST:PORT over gRPC, and on
    HOST:REST_PORT over arkd's REST interface.

    Every default is arkd v0.9.15's (docs/simulators.md lists them with their ARKD_*
    settings)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    programs: dict[str, str] = {}
    for item in intent_fees:
        kind, sep, program = item.partition("=")
        if not sep or kind not in IntentFeePrograms.__struct_fields__:
            raise click.BadParameter(f"{item!r} is not KIND=PROGRAM", param_hint="--intent-fee")
        programs[kind] = program
    try:
        ledger = Ledger(
            network=network,
            unilateral_exit_delay=exit_delay,
            boarding_exit_delay=boarding_exit_delay,
            checkpoint_exit_delay=checkpoint_exit_delay,
            vtxo_lifetime=vtxo_tree_expiry,
            vtxo_min_amount=vtxo_min_amount,
            vtxo_max_amount=vtxo_max_amount,
            max_op_return_outputs=max_op_return_outputs,
            intent_fees=IntentFeePrograms(**programs),
            state_file=state,
        )
    except ValueError as exc:  # FeeProgramError included
        raise click.UsageError(str(exc)) from exc
    chain = EsploraChain(esplora) if esplora else None
    sim = ArkdSimulator(
        ledger,
        host=host,
        chain=chain,
        batch_config=BatchConfig(
            session_duration=session_duration, vtxo_tree_expiry=vtxo_tree_expiry
        ),
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
