"""`arkrelay config check FILE`: validate a config and show what it resolves to."""

from __future__ import annotations

from pathlib import Path

import click
import msgspec

from ..config import effective_config
from .common import load_everything

__all__ = ["config"]


@click.group("config")
def config() -> None:
    """Inspect configuration."""


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def check(file: Path) -> None:
    """Validate FILE and print the effective config (secrets masked)."""
    loaded, _ = load_everything(file)
    rendered = msgspec.json.format(msgspec.json.encode(effective_config(loaded)), indent=2)
    click.echo(rendered.decode())
    click.echo(f"{file}: ok", err=True)
