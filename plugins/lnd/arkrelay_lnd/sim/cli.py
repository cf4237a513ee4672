"""``arkrelay sim ln``: run the simulated Lightning network, and drive its ``outside`` node
(the rest of the world) against a running dev gateway.

``serve`` (or a gateway running the embedded simulator) writes ``<data dir>/sim-ln.json``;
``invoice``, ``pay`` and ``status`` read it and talk to the ``outside`` node's own lnd
gRPC API with the plugin's client. The chain is the serving process's own: lnd's API has
no call to mine or to change fees, so blocks come from ``serve --block-interval`` and the
fee floor from ``serve --fee-floor`` (in process: ``network.mine()``,
``network.chain.fee_floor``).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
import trio

from arkrelay_core.config import Duration
from arkrelay_core.errors import ArkRelayError
from arkrelay_core.shutdown import cancel_on_signals

from .network import SimNetwork
from .server import LndSimulator
from .state import CERT_FILE, STATE_FILE, client_settings

__all__ = ["drive", "ln"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_data_dir = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".arkrelay"),
    show_default=True,
    help="where the simulator's state file lives (the gateway's data dir)",
)


@click.group("ln")
def ln() -> None:
    """The simulated Lightning network (lnd's gRPC API, one server per node)."""


@ln.command("serve")
@_data_dir
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--node", "nodes", multiple=True, help="extra node names (repeatable)")
@click.option(
    "--port",
    "ports",
    multiple=True,
    metavar="NAME=PORT",
    help="fixed port of a node (repeatable; default: free ports)",
)
@click.option("--block-interval", type=float, default=0.0, help="mine a block every N seconds")
@click.option(
    "--fee-floor",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="SAT_PER_VBYTE",
    help="blocks leave out transactions whose package pays less (fee-bump them to confirm)",
)
def serve(
    data_dir: Path,
    host: str,
    nodes: tuple[str, ...],
    ports: tuple[str, ...],
    block_interval: float,
    fee_floor: float,
) -> None:
    """Run the network (nodes gateway and outside, plus --node ones) until Ctrl-C."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    fixed: dict[str, int] = {}
    for item in ports:
        name, sep, port = item.partition("=")
        if not sep or not port.isdigit():
            raise click.BadParameter(f"{item!r} is not NAME=PORT", param_hint="--port")
        fixed[name] = int(port)
    sim = LndSimulator(SimNetwork(), host=host, nodes=("gateway", "outside", *nodes))
    sim.network.chain.fee_floor = fee_floor
    trio.run(_serve, sim, data_dir, fixed, block_interval or None)
    click.echo("stopped")


async def _serve(
    sim: LndSimulator, data_dir: Path, ports: dict[str, int], block_interval: float | None
) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        for name, port in ports.items():
            sim.start(name, port)
        await nursery.start(
            functools.partial(sim.serve, data_dir=data_dir, block_interval=block_interval)
        )
        for name, node in sim.network.nodes.items():
            click.echo(f"node {name}: {sim.target(name)} pubkey {node.pubkey}")
        click.echo(f"state in {data_dir / STATE_FILE}; certificate {data_dir / CERT_FILE}")
        click.echo("lnd simulator ready")


def _outside(data_dir: Path, node: str) -> Any:
    from ..client import LndBackend

    try:
        settings = client_settings(data_dir, node, call_timeout=Duration(10), retries=1)
    except FileNotFoundError:
        raise click.ClickException(
            f"no simulator state in {data_dir / STATE_FILE}: run `arkrelay sim ln serve` or a "
            "dev gateway with the embedded lnd simulator"
        ) from None
    except KeyError:
        raise click.ClickException(f"the simulator has no node {node!r}") from None
    return LndBackend(settings)


def drive(backend: Any, action: Callable[[Any], Awaitable[T]]) -> T:
    """Serve ``backend`` (an lnd or tapd client), run ``action(backend)``, stop; our
    errors become click errors with their PROTOCOL.md code."""

    async def run() -> T:
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.serve)
            try:
                return await action(backend)
            finally:
                nursery.cancel_scope.cancel()

    try:
        return trio.run(run)
    except ArkRelayError as exc:
        raise click.ClickException(f"{exc.code.value}: {exc}") from exc


def _echo(value: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2, sort_keys=True))


_node = click.option("--node", default="outside", show_default=True, help="the node to act as")


@ln.command("invoice")
@click.argument("sat", type=click.IntRange(min=1))
@click.option("--asset", metavar="TICKER", help="an asset invoice (needs the tapd simulator)")
@click.option("--memo", default="arkrelay sim", show_default=True)
@click.option("--expiry", type=int, default=3600, show_default=True)
@_data_dir
@_node
def invoice(sat: int, asset: str | None, memo: str, expiry: int, data_dir: Path, node: str) -> None:
    """Create an invoice for SAT sats on the outside node; prints it."""
    if asset is not None:
        _asset_invoice(data_dir, node, asset, sat, memo, expiry)
        return
    created = drive(
        _outside(data_dir, node), lambda b: b.create_invoice(sat * 1000, memo=memo, expiry=expiry)
    )
    _echo(created)


def _asset_invoice(
    data_dir: Path, node: str, ticker: str, amount: int, memo: str, expiry: int
) -> None:
    try:
        from arkrelay_tapd.sim.cli import asset_invoice
    except ImportError:
        raise click.ClickException("--asset needs the arkrelay-tapd plugin installed") from None
    _echo(asset_invoice(data_dir, node, ticker, amount, memo=memo, expiry=expiry))


@ln.command("pay")
@click.argument("bolt11")
# The simulated network charges 1 sat + 0.1 %: 1000 sats pay a 100,000 sat lift.
@click.option("--fee-limit-sat", type=int, default=1000, show_default=True)
@click.option("--timeout", type=int, default=30, show_default=True, help="seconds")
@_data_dir
@_node
def pay(bolt11: str, fee_limit_sat: int, timeout: int, data_dir: Path, node: str) -> None:
    """Pay BOLT11 from the outside node; prints the outcome (pending if undecided)."""
    _echo(
        drive(
            _outside(data_dir, node),
            lambda b: b.pay_invoice(bolt11, fee_limit_sat=fee_limit_sat, timeout_seconds=timeout),
        )
    )


@ln.command("status")
@click.argument("payment_hash")
@_data_dir
@_node
def status(payment_hash: str, data_dir: Path, node: str) -> None:
    """The outside node's invoice and payment for PAYMENT_HASH, whichever exist."""

    async def both(backend: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        try:
            found["invoice"] = await backend.lookup_invoice(payment_hash)
        except ArkRelayError as exc:
            found["invoice"] = None
            log.debug("no invoice %s: %s", payment_hash, exc)
        payment = await backend.track_payment(payment_hash)
        found["payment"] = payment if payment.failure_reason != "not_initiated" else None
        return found

    _echo(drive(_outside(data_dir, node), both))
