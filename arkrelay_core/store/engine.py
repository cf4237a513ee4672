"""Engines for the two supported databases: SQLite (embedded) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from .errors import StoreError

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "WRITER",
    "create_engine_for",
    "mask_url",
    "session_factory",
]

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite writer waits for another writer's lock before giving up."""

WRITER = {"arkrelay_writer": True}
"""Execution options of a connection that will write: on SQLite its transactions begin
``IMMEDIATE`` (the write lock is taken at ``BEGIN``, so a read-then-write transaction never
meets a busy snapshot it cannot wait out)."""

_SQLITE_DRIVERS = {"", "pysqlite"}
_POSTGRES_NAMES = {"postgresql", "postgres"}
_POSTGRES_DRIVERS = {"", "psycopg"}
# user:password@ in text that may not even parse as a URL
_PASSWORD_IN_URL = re.compile(r":[^/]*@")


def mask_url(url: str | URL) -> str:
    """``url`` as text with any password replaced by ``***``, fit for messages and logs."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _PASSWORD_IN_URL.sub(":***@", url)


def create_engine_for(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for ``url``, configured the way the gateway needs it.

    ``sqlite:///path.db`` gets WAL, foreign keys, a busy timeout and ``synchronous=NORMAL``
    on every connection, and the file's directory is created. Its transactions begin
    where SQLAlchemy begins them (``BEGIN``, or ``BEGIN IMMEDIATE`` on a connection with
    the :data:`WRITER` options), not where the sqlite3 module guesses: reads are in the
    transaction, and SAVEPOINTs nest inside it instead of opening (and, released,
    committing) one of their own. ``postgresql://`` and
    ``postgres://`` mean ``postgresql+psycopg://`` (psycopg 3). Anything else raises
    :class:`StoreError` naming the URL, password masked.
    """
    parsed = _parse(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in _SQLITE_DRIVERS:
        _create_parent_directory(parsed)
        engine = create_engine(parsed, echo=echo)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite)
    elif backend in _POSTGRES_NAMES and driver in _POSTGRES_DRIVERS:
        # pre_ping: a PostgreSQL restart must not surface as errors on pooled connections.
        parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, echo=echo, pool_pre_ping=True)
    else:
        raise StoreError(
            f"unsupported database URL {mask_url(parsed)!r}: use sqlite:///<path> or "
            "postgresql+psycopg://<user>@<host>/<database>"
        )
    logger.debug("store engine for %s", mask_url(parsed))
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """ORM sessions bound to ``engine``.

    Objects stay readable after commit: they are often handed from the worker thread that
    ran the transaction back to trio code that must not touch the database.
    """
    return sessionmaker(engine, expire_on_commit=False)


def _parse(url: str | URL) -> URL:
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"cannot parse database URL {mask_url(url)!r}") from exc


def _create_parent_directory(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Owner-only from the start (SQLite's -wal and -shm files copy the mode): the ledger
    # holds lift invoice preimages. O_CREAT alone leaves an existing file as it is.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def _configure_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # With WAL, NORMAL survives a killed process; only an OS crash or power cut can
        # lose the newest commits. Deployments that cannot accept that run PostgreSQL.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
    # The sqlite3 module's own transaction handling off (SQLAlchemy's pysqlite notes):
    # _begin_sqlite says BEGIN instead.
    dbapi_connection.isolation_level = None


def _begin_sqlite(connection: Connection) -> None:
    immediate = connection.get_execution_options().get("arkrelay_writer", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
