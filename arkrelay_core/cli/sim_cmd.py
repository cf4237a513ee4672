"""`arkrelay sim ...`: simulators shipped by the installed plugins."""

from __future__ import annotations

import click

from ..plugins import load_plugins

__all__ = ["sim"]


@click.group("sim")
def sim() -> None:
    """Run and drive the daemon simulators that installed plugins provide."""


# This module is imported only when `arkrelay sim` runs (see cli/__init__.py).
load_plugins().plugin_manager.hook.arkrelay_register_sim_commands(sim=sim)
