"""`arkrelay demo`: the gateway on embedded defaults and three reference wallets, every
flow once. Added to the `arkrelay` command by this distribution's plugin
(``arkrelay_register_commands``); what it runs is imported only when it runs."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["demo"]


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".arkrelay-demo"),
    show_default=True,
    help="the demo's data directory (emptied at start)",
)
@click.option(
    "--relay",
    metavar="URL",
    help="run through this Nostr relay instead of the gateway's own endpoint",
)
@click.option("--verbose", is_flag=True, help="show the gateway's own logs too")
def demo(directory: Path, relay: str | None, verbose: bool) -> None:
    """Lift, transfer, split, swap and land over Nostr against simulated daemons.

    Exits 0 only if every confirmation arrived and every balance is the expected one.
    """
    import trio

    from arkrelay_core.plugins import load_plugins

    from .client import WalletError, find_error
    from .demo import Demo, DemoFailed, quiet_gateway_logs

    if not verbose:
        quiet_gateway_logs()
    run = Demo(load_plugins(), directory, out=click.echo, relay=relay)
    try:
        trio.run(run.run)
    # Nurseries wrap what a step raised in exception groups; the operator needs the step.
    except (DemoFailed, WalletError, BaseExceptionGroup) as exc:
        failure = find_error(exc, (DemoFailed, WalletError))
        if failure is None:
            raise
        raise click.ClickException(f"demo failed in step {run.step!r}: {failure}") from exc
    click.echo("demo complete")
