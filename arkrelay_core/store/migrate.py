"""Schema migrations (Alembic), run from code: no alembic.ini, scripts shipped in the package."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from .engine import create_engine_for, mask_url
from .errors import StoreError

__all__ = ["MIGRATIONS_DIR", "Migration", "current", "downgrade", "head", "history", "upgrade"]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Alembic's ``context`` and ``op`` are process-wide proxies: one command at a time per process.
_ALEMBIC_LOCK = threading.Lock()
# Instances sharing a PostgreSQL database may start together; the first migrates and the
# others wait on this transaction-scoped advisory lock, then find the schema current.
_MIGRATION_LOCK_KEY = 0x41524B5245  # "ARKRE"


class Migration(msgspec.Struct, frozen=True):
    """One schema revision, as listed by :func:`history`."""

    revision: str
    down_revision: str | None
    description: str


def upgrade(url: str | URL | Engine, revision: str = "head") -> None:
    """Migrate the database at ``url`` forward to ``revision`` (default: the newest)."""
    with _connection(url) as connection:
        logger.info("upgrading %s to %s", _describe(connection), revision)
        _run(command.upgrade, connection, revision)


def downgrade(url: str | URL | Engine, revision: str) -> None:
    """Migrate the database at ``url`` back to ``revision`` (``"base"`` empties it)."""
    with _connection(url) as connection:
        logger.info("downgrading %s to %s", _describe(connection), revision)
        _run(command.downgrade, connection, revision)


def current(url: str | URL | Engine) -> str | None:
    """The revision the database at ``url`` is at, or ``None`` if it was never migrated."""
    with _connection(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    """The newest revision shipped with this package."""
    heads = _scripts().get_heads()
    if len(heads) != 1:
        raise StoreError(f"the shipped migrations must have exactly one head, found {heads}")
    return heads[0]


def history() -> list[Migration]:
    """Every shipped revision, oldest first."""
    revisions = reversed(list(_scripts().walk_revisions()))
    return [
        Migration(
            revision=script.revision,
            down_revision=_single_parent(script.down_revision),
            description=script.doc or "",
        )
        for script in revisions
    ]


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _run(operation: Callable[[Config, str], None], connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    try:
        with _ALEMBIC_LOCK:
            operation(_config(connection), revision)
    except CommandError as exc:
        raise StoreError(f"migration to {revision!r} failed: {exc}") from exc


@contextmanager
def _connection(url: str | URL | Engine) -> Iterator[Connection]:
    """A connection in a transaction that commits on success; own engines are disposed."""
    engine = url if isinstance(url, Engine) else create_engine_for(url)
    try:
        with engine.begin() as connection:
            yield connection
    except SQLAlchemyError as exc:
        raise StoreError(f"database {mask_url(engine.url)!r}: {exc}") from exc
    finally:
        if engine is not url:
            engine.dispose()


def _describe(connection: Connection) -> str:
    return mask_url(connection.engine.url)


def _single_parent(down_revision: str | tuple[str, ...] | None) -> str | None:
    if isinstance(down_revision, tuple):
        raise StoreError(f"merge revisions are not supported here: {down_revision}")
    return down_revision
