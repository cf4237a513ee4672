"""The ``arkrelay`` command.

Subcommands are imported only when invoked: the database and gateway stacks take a
second to import, which ``arkrelay --version`` or ``arkrelay keys show`` should not pay.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging

import click

__all__ = ["cli", "main"]

_COMMANDS = {
    "run": ("run_cmd", "run"),
    "demo": ("demo_cmd", "demo"),
    "keys": ("keys", "keys"),
    "plugins": ("plugins_cmd", "plugins"),
    "db": ("db_cmd", "db"),
    "config": ("config_cmd", "config"),
    "sim": ("sim_cmd", "sim"),
    "settlement": ("settlement_cmd", "settlement"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attr = _COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        assert isinstance(command, click.Command)
        return command


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
