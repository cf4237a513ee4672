"""Registers the ``arkd`` Ark backend with the ArkRelay plugin host."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arkrelay_core.interfaces import PluginContext, PluginSpec
from arkrelay_core.plugins import hookimpl

from . import __version__
from .settings import ArkdSettings

if TYPE_CHECKING:
    import click

__all__ = ["arkrelay_register_backends", "arkrelay_register_sim_commands"]


def _arkd(settings: ArkdSettings, context: PluginContext) -> Any:
    # Imported here so listing plugins does not load grpcio and embit.
    from .client import ArkdBackend

    return ArkdBackend(settings, context)


@hookimpl
def arkrelay_register_backends() -> list[PluginSpec]:
    return [
        PluginSpec(
            name="arkd",
            version=__version__,
            role="ark",
            settings_type=ArkdSettings,
            factory=_arkd,
            description="arkd v0.9.15 over gRPC; runs an in-process arkd simulator when no "
            "target is set",
        )
    ]


@hookimpl
def arkrelay_register_sim_commands(sim: click.Group) -> None:
    from .sim.cli import arkd

    sim.add_command(arkd)
