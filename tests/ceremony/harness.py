"""The real gateway in the test's trio loop: relay-pool transport to a real nostr-relay
process, the arkd and lnd plugins with their simulators over gRPC on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from arkrelay_wallet.lightning import node_client

from arkrelay_core.config import load_config_text
from arkrelay_core.gateway import Gateway
from arkrelay_core.plugins import load_plugins
from arkrelay_core.serving import serving

__all__ = ["gateway_config", "node_client", "running_gateway"]


#: The in-process simulator's setting these tests need: the gateway's fees are outputs
#: below dust, which arkd (and so the simulator) refuses unless ARKD_VTXO_MIN_AMOUNT is
#: lowered from its default, the dust limit.
SUB_DUST_SIMULATOR = "\n[backend.ark.simulator]\nvtxo_min_amount = 1\n"


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
    if not ark_target:
        ark += SUB_DUST_SIMULATOR
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
    async with serving(config, registry, environ={}) as gateway:
        yield gateway


async def board(gateway: Gateway, owner: str, amount: int) -> Any:
    return await gateway.components.backends["ark"].board(owner, amount)


def outside_node(gateway: Gateway, node: str = "outside") -> Any:
    """An lnd client of a node of the gateway's simulated network, over gRPC."""
    return node_client(gateway.config.gateway.data_dir, node)


def lightning_node(gateway: Gateway, name: str = "gateway") -> Any:
    """The simulated node itself, to switch its failure modes."""
    return gateway.components.backends["lightning"].simulator.node(name)
