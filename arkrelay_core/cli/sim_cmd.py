"""`arkrelay sim ...`: simulators shipped by the installed plugins."""

from __future__ import annotations

import logging

import click

from ..plugins import load_plugins, one_by_one

log = logging.getLogger(__name__)

__all__ = ["sim"]


@click.group("sim")
def sim() -> None:
    """Run and drive the daemon simulators that installed plugins provide."""


def _add_plugin_commands() -> None:
    pm = load_plugins().plugin_manager
    for plugin_name, call in one_by_one(pm, pm.hook.arkrelay_register_sim_commands):
        try:
            call(sim=sim)
        # One plugin's bug must not take the other plugins' simulators down with it.
        except Exception:
            log.exception("plugin %s: arkrelay_register_sim_commands raised", plugin_name)


# This module is imported only when `arkrelay sim` runs (see cli/__init__.py).
_add_plugin_commands()
