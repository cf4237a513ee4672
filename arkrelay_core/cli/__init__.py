"""The ``arkrelay`` command.

Subcommands are imported only when invoked: the database and gateway stacks take a
second to import, which ``arkrelay --version`` or ``arkrelay keys show`` should not pay.
Plugins add commands of their own through ``arkrelay_register_commands`` (the reference
wallet adds ``demo``); the plugins are loaded only to find or list such a command.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging

import click
import pluggy

__all__ = ["cli", "main", "plugin_commands"]

log = logging.getLogger(__name__)

_COMMANDS = {
    "run": ("run_cmd", "run"),
    "keys": ("keys", "keys"),
    "plugins": ("plugins_cmd", "plugins"),
    "db": ("db_cmd", "db"),
    "config": ("config_cmd", "config"),
    "sim": ("sim_cmd", "sim"),
    "settlement": ("settlement_cmd", "settlement"),
}


class _LazyGroup(click.Group):
    _from_plugins: dict[str, click.Command] | None = None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *self._plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return self._plugin_commands().get(cmd_name)
        module, attr = _COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        assert isinstance(command, click.Command)
        return command

    def _plugin_commands(self) -> dict[str, click.Command]:
        if self._from_plugins is None:
            from ..plugins import load_plugins

            self._from_plugins = plugin_commands(load_plugins().plugin_manager)
        return self._from_plugins


def plugin_commands(pm: pluggy.PluginManager) -> dict[str, click.Command]:
    """The commands the plugins of ``pm`` add (``arkrelay_register_commands``), by name.

    A plugin whose hook raises is logged and left out; the others' commands still come.
    """
    from ..plugins import one_by_one

    found: dict[str, click.Command] = {}
    for plugin_name, call in one_by_one(pm, pm.hook.arkrelay_register_commands):
        # One group per plugin, so that a clash is reported with the plugin's name.
        group = click.Group(plugin_name)
        try:
            call(cli=group)
        # A plugin's bug must not take the other commands (or --help) down with it.
        except Exception:
            log.exception("plugin %s: arkrelay_register_commands raised", plugin_name)
            continue
        for name, command in group.commands.items():
            if name in _COMMANDS or name in found:
                log.warning("plugin %s: command %r is taken; ignored", plugin_name, name)
                continue
            found[name] = command
    return found


@click.group(cls=_LazyGroup)
@click.version_option(importlib.metadata.version("arkrelay-core"), prog_name="arkrelay")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def cli(log_level: str) -> None:
    """ArkRelay: a gateway between Nostr wallets and Bitcoin L2 rails."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if log_level != "debug":
        # httpx logs every request at info: the wallets' and the simulators' reads of the
        # Ark server and the chain would bury what an operator needs to see.
        logging.getLogger("httpx").setLevel(logging.WARNING)


def main() -> None:
    cli(prog_name="arkrelay")
