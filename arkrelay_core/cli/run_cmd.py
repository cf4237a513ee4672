"""`arkrelay run`: the main job."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click
import trio

from ..errors import PluginError
from ..gateway import Gateway
from ..identity import open_identity
from ..interfaces import DaemonTarget, Listener, Simulatable
from ..nostr import encode_npub
from ..servicekey import ServiceKeyError
from ..shutdown import cancel_on_signals
from ..store import StoreError, create_engine_for, mask_url, session_factory, upgrade
from .common import config_option, load_everything

__all__ = ["run"]

log = logging.getLogger(__name__)


@click.command("run")
@config_option
@click.option(
    "--check",
    is_flag=True,
    help="Start everything, print the banner, then stop: proves a config runs.",
)
def run(config_path: Path | None, check: bool) -> None:
    """Run the gateway (embedded defaults without a config). Ctrl-C stops it."""
    config, registry = load_everything(config_path)
    settings = config.gateway
    _private_state(settings.data_dir)
    try:
        upgrade(settings.database)
        identity = open_identity(settings.key_file, settings.network)
        engine = create_engine_for(settings.database)
        gateway = Gateway(config, registry, identity, session_factory(engine))
    except (StoreError, ServiceKeyError, PluginError) as exc:
        raise click.ClickException(str(exc)) from exc

    try:
        trio.run(_serve, gateway, check, mask_url(settings.database))
    finally:
        engine.dispose()
    click.echo("stopped")


def _private_state(data_dir: Path) -> None:
    """Whatever the gateway creates from here on is its user's alone: the data directory
    0700, databases, ledgers and logs 0600 (they hold lift invoice preimages and signing
    state), whatever umask the operator's shell had."""
    os.umask(0o077)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = data_dir.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s is open to other users (mode %o); run chmod 700", data_dir, mode)


async def _serve(gateway: Gateway, check: bool, database: str) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signals, nursery.cancel_scope)
        await nursery.start(gateway.serve)
        # After start-up, so that listeners report the address they really bound.
        _banner(gateway, database)
        click.echo("gateway running" + ("" if check else "; Ctrl-C stops it"))
        if check:
            nursery.cancel_scope.cancel()


def _settlement(gateway: Gateway) -> str:
    section, strategy = gateway.config.settlement, gateway.components.settlement
    if section is None or strategy is None:
        return "none enabled"
    schedule = strategy.statistics().get("schedule")
    shared = gateway.leadership is not None and gateway.leadership.shared
    return (
        f"{section.plugin}"
        + (f" ({schedule})" if schedule else "")
        + ("; settles while it holds the PostgreSQL leader lock" if shared else "")
    )


def _banner(gateway: Gateway, database: str) -> None:
    ident = gateway.identity
    components = gateway.components
    simulated = [role for role, b in components.backends.items() if _simulated(b)]
    lines = [
        "ArkRelay gateway",
        f"  service key  {encode_npub(ident.pubkey)}",
        f"               {ident.pubkey}" + ("  (DEV KEY: not for real funds)" if ident.dev else ""),
        f"  network      {gateway.config.gateway.network}",
        f"  config       {gateway.config.source}",
        f"  database     {database}",
        f"  transports   {', '.join(components.transports) or 'none enabled'}",
        *(
            f"    {name:<10} {transport.url}"
            for name, transport in components.transports.items()
            if isinstance(transport, Listener)
        ),
        f"  http         {gateway.http.url if gateway.http else 'off (no [http] table)'}",
        f"  backends     {', '.join(components.backends) or 'none enabled'}",
        *(
            f"    {role:<10} {section.plugin:<6} {_where(components.backends[role])}"
            for role, section in gateway.config.backends.items()
        ),
        f"  settlement   {_settlement(gateway)}",
        f"  plugins      {len(gateway.registry.installed)} installed"
        + (
            f", {len(gateway.registry.failures)} FAILED to load"
            if gateway.registry.failures
            else ""
        ),
    ]
    if simulated:
        lines += [
            f"  !! SIMULATED: {', '.join(simulated)} run on in-process simulators; no real "
            "money moves !!",
            "  the simulated Lightning network: arkrelay sim ln invoice|pay|status "
            f"--data-dir {gateway.config.gateway.data_dir}",
        ]
    click.echo("\n".join(lines))


def _simulated(backend: object) -> bool:
    return isinstance(backend, Simulatable) and backend.simulator is not None


def _where(backend: Any) -> str:
    where = backend.target if isinstance(backend, DaemonTarget) else "(target not reported)"
    if _simulated(backend):
        where = f"SIMULATED on {where}"
    reserve = backend.statistics().get("gbtc_reserve")
    return f"{where}, gBTC reserve {reserve}" if reserve else where
