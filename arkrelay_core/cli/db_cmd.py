"""`arkrelay db upgrade | downgrade | current`: the schema, through Alembic."""

from __future__ import annotations

from pathlib import Path

import click

from ..store import StoreError, current, head, upgrade
from ..store import downgrade as store_downgrade
from .common import config_option, load_everything

__all__ = ["db"]

database_option = click.option(
    "--database", "database_url", default=None, help="Database URL (overrides the config)."
)


def _url(config_path: Path | None, database_url: str | None) -> str:
    if database_url:
        return database_url
    config, _ = load_everything(config_path)
    return config.gateway.database


@click.group("db")
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
@config_option
@database_option
def upgrade_cmd(revision: str, config_path: Path | None, database_url: str | None) -> None:
    """Migrate the database up to REVISION (default: head)."""
    url = _url(config_path, database_url)
    try:
        upgrade(url, revision)
        click.echo(f"database at {current(url) or 'base'}")
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


@db.command("downgrade")
@click.argument("revision")
@config_option
@database_option
def downgrade_cmd(revision: str, config_path: Path | None, database_url: str | None) -> None:
    """Migrate the database down to REVISION ("base" empties it)."""
    url = _url(config_path, database_url)
    try:
        store_downgrade(url, revision)
        click.echo(f"database at {current(url) or 'base'}")
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


@db.command("current")
@config_option
@database_option
def current_cmd(config_path: Path | None, database_url: str | None) -> None:
    """Print the database's revision and whether it is the newest."""
    url = _url(config_path, database_url)
    try:
        rev = current(url)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    latest = head()
    state = "up to date" if rev == latest else f"behind (head is {latest})"
    click.echo(f"{rev or 'base'} ({state})")
