"""The ``arkrelay`` command."""

from __future__ import annotations

import importlib.metadata
import logging

import click

from .config_cmd import config
from .db_cmd import db
from .keys import keys
from .plugins_cmd import plugins
from .run_cmd import run

__all__ = ["cli", "main"]


@click.group()
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


for command in (run, keys, plugins, db, config):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="arkrelay")
