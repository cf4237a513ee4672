"""Registers the ``tapd`` asset backend with the ArkRelay plugin host."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arkrelay_core.interfaces import PluginContext, PluginSpec
from arkrelay_core.plugins import hookimpl

from . import __version__
from .settings import TapdSettings

if TYPE_CHECKING:
    import click

__all__ = ["arkrelay_register_backends", "arkrelay_register_sim_commands"]


def _tapd(settings: TapdSettings, context: PluginContext) -> Any:
    # Imported here so listing plugins does not load grpcio.
    from .client import TapdBackend

    return TapdBackend(settings, context)


@hookimpl
def arkrelay_register_backends() -> list[PluginSpec]:
    return [
        PluginSpec(
            name="tapd",
            version=__version__,
            role="assets",
            settings_type=TapdSettings,
            factory=_tapd,
            description="tapd v0.8.1 over gRPC; runs a tapd simulator over the simulated "
            "Lightning network when no target is set",
        )
    ]


@hookimpl
def arkrelay_register_sim_commands(sim: click.Group) -> None:
    from .sim.cli import tapd

    sim.add_command(tapd)
