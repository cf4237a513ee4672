"""Registers the ``lnd`` Lightning backend with the ArkRelay plugin host."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arkrelay_core.interfaces import PluginContext, PluginSpec
from arkrelay_core.plugins import hookimpl

from . import __version__
from .settings import LndSettings

if TYPE_CHECKING:
    import click

__all__ = ["arkrelay_register_backends", "arkrelay_register_sim_commands"]


def _lnd(settings: LndSettings, context: PluginContext) -> Any:
    # Imported here so listing plugins does not load grpcio, bolt11 and embit.
    from .client import LndBackend

    return LndBackend(settings, context)


@hookimpl
def arkrelay_register_backends() -> list[PluginSpec]:
    return [
        PluginSpec(
            name="lnd",
            version=__version__,
            role="lightning",
            settings_type=LndSettings,
            factory=_lnd,
            description="lnd v0.21.2-beta over gRPC; runs a simulated Lightning network when "
            "no target is set",
        )
    ]


@hookimpl
def arkrelay_register_sim_commands(sim: click.Group) -> None:
    from .chainsim.cli import chain
    from .sim.cli import ln

    sim.add_command(ln)
    sim.add_command(chain)
