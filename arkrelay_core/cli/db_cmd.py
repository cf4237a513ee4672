"""`arkrelay db upgrade | downgrade | current | backup | restore`: the schema, through
Alembic, and whole copies of the database (:mod:`arkrelay_core.store.backup` does the
copying). Every command names the database by the config, or ``--database``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..store import (
    BackupError,
    StoreError,
    backup_database,
    current,
    head,
    history,
    restore_database,
    upgrade,
)
from ..store import downgrade as store_downgrade
from .common import config_option, load_everything

__all__ = ["db"]

database_option = click.option(
    "--database", "database_url", default=None, help="Database URL (overrides the config)."
)
force_option = click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")


def _url(config_path: Path | None, database_url: str | None) -> str:
    if database_url:
        return database_url
    config, _ = load_everything(config_path)
    return config.gateway.database


@click.group("db")
def db() -> None:
    """Database schema migrations, backup and restore."""


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
    click.echo(f"{rev or 'base'} ({_state(rev)})")


def _state(revision: str | None) -> str:
    """Where ``revision`` stands against the migrations this version ships."""
    latest = head()
    if revision == latest:
        return "up to date"
    if revision is not None and revision not in {m.revision for m in history()}:
        return f"unknown to this version, whose head is {latest}: made by a newer arkrelay?"
    return f"behind (head is {latest})"


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@force_option
@config_option
@database_option
def backup_cmd(path: Path, force: bool, config_path: Path | None, database_url: str | None) -> None:
    """Copy the whole database to PATH; the gateway may keep running.

    SQLite: a consistent snapshot through SQLite's backup API, in one file. PostgreSQL:
    pg_dump's custom format (pg_dump must be on PATH).
    """
    url = _url(config_path, database_url)
    try:
        copy = backup_database(url, path, force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"backed up {copy.database} (schema {copy.revision or 'base'}) to {path}")


@db.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
@config_option
@database_option
def restore_cmd(
    path: Path, force: bool, config_path: Path | None, database_url: str | None
) -> None:
    """Replace the database with the backup in PATH. Stop the gateway first.

    Refuses while another connection uses the database, and, without --force, when the
    database already holds data. SQLite: the file is replaced atomically. PostgreSQL:
    pg_restore --clean in a single transaction (pg_restore must be on PATH).
    """
    url = _url(config_path, database_url)
    try:
        copy = restore_database(url, path, force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        state = _state(current(copy.url))
    except StoreError as exc:
        raise click.ClickException(f"restored, but cannot read the schema revision: {exc}") from exc
    if state.startswith("behind"):
        state += "; `arkrelay db upgrade` (or the gateway, at start) migrates it"
    click.echo(f"restored {path} (schema {copy.revision}) into {copy.database}; {state}")
