"""The real gateway in the test's trio loop: relay-pool transport to a real nostr-relay
process, the arkd and lnd plugins with their simulators over gRPC on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from arkrelay_core.config import load_config_text
from arkrelay_core.gateway import Gateway
from arkrelay_core.identity import open_identity
from arkrelay_core.plugins import load_plugins
from arkrelay_core.store import create_engine_for, session_factory, upgrade

__all__ = ["gateway_config", "running_gateway"]


def gateway_config(
    directory: Path,
    relay_url: str,
    *,
    database: str | None = None,
    extra: str = "",
    key_file: Path | None = None,
    ark_target: str | None = None,
    ark_settings: str = "",
    lightning: bool = True,
) -> str:
    """A config on a real relay; the arkd simulator in-process unless ``ark_target``."""
    directory.mkdir(parents=True, exist_ok=True)
    database = database or f"sqlite:///{directory / 'arkrelay.db'}"
    key_file = key_file or directory / "gateway.key"
    ark = (f'target = "{ark_target}"\n' if ark_target else "") + ark_settings
    ln = '[backend.lightning]\nplugin = "lnd"' if lightning else ""
    return f"""
[gateway]
network = "regtest"
data_dir = "{directory}"
database = "{database}"
key_file = "{key_file}"

[transport.relays]
plugin = "relays"
relays = ["{relay_url}"]

[backend.ark]
plugin = "arkd"
{ark}

{ln}

[outbox]
retry_initial = "1s"
retry_max = "3s"
{extra}
"""


@contextlib.asynccontextmanager
async def running_gateway(
    directory: Path,
    relay_url: str,
    *,
    database: str | None = None,
    extra: str = "",
    observers: tuple[tuple[str, object], ...] = (),
    ark_settings: str = "",
) -> AsyncIterator[Gateway]:
    registry = load_plugins(extra=observers)
    text = gateway_config(
        directory, relay_url, database=database, extra=extra, ark_settings=ark_settings
    )
    config = load_config_text(
        text, source=str(directory / "gw.toml"), settings_resolver=registry.settings_type
    )
    upgrade(config.gateway.database)
    identity = open_identity(config.gateway.key_file, "regtest", environ={})
    engine = create_engine_for(config.gateway.database)
    gateway = Gateway(config, registry, identity, session_factory(engine))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)
            yield gateway
            nursery.cancel_scope.cancel()
    finally:
        engine.dispose()


async def board(gateway: Gateway, owner: str, amount: int) -> Any:
    return await gateway.components.backends["ark"].board(owner, amount)


def outside_node(gateway: Gateway, node: str = "outside") -> Any:
    """An lnd client of a node of the gateway's simulated network, over gRPC."""
    return node_client(gateway.config.gateway.data_dir, node)


@contextlib.asynccontextmanager
async def node_client(data_dir: Path, node: str = "outside") -> AsyncIterator[Any]:
    """An lnd client of a node of the simulated network whose state is in ``data_dir``."""
    from arkrelay_lnd.client import LndBackend
    from arkrelay_lnd.settings import LndSettings
    from arkrelay_lnd.sim.state import CERT_FILE, STATE_FILE, read_state

    from arkrelay_core.config import Duration, HostPort, Secret

    entry = read_state(data_dir).nodes[node]
    backend = LndBackend(
        LndSettings(
            target=HostPort.parse(entry.target),
            tls_cert=data_dir / CERT_FILE,
            macaroon=Secret(entry.macaroon, origin=str(data_dir / STATE_FILE)),
            call_timeout=Duration(10),
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        yield backend
        nursery.cancel_scope.cancel()


def lightning_node(gateway: Gateway, name: str = "gateway") -> Any:
    """The simulated node itself, to switch its failure modes."""
    return gateway.components.backends["lightning"].simulator.node(name)
