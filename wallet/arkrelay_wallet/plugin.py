"""The reference wallet's plugin: it adds ``arkrelay demo`` to the command line, and
nothing to a gateway (it registers no transport, backend or strategy)."""

from __future__ import annotations

import click

from arkrelay_core.plugins import hookimpl

__all__ = ["arkrelay_register_commands"]


@hookimpl
def arkrelay_register_commands(cli: click.Group) -> None:
    from .demo_cmd import demo

    cli.add_command(demo)
