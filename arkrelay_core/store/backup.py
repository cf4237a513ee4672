"""Whole copies of the database: backup and restore, for SQLite and PostgreSQL.

A SQLite backup is made with SQLite's online backup API: one consistent snapshot, commits
still in the WAL included, taken while the gateway keeps writing, and written as a single
self-contained file. A PostgreSQL backup is ``pg_dump --format=custom``. Restoring replaces
the database with a backup's content; it refuses while another connection uses the
database, so the gateway is stopped first.

Every refusal and failure is a :class:`BackupError` whose message is one line for an
operator (``arkrelay db backup | restore`` prints it as is; ``--force`` there is the
``force`` argument here).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from .engine import create_engine_for, mask_url
from .errors import StoreError
from .migrate import history

__all__ = ["BackupError", "DatabaseCopy", "backup_database", "restore_database"]

#: Seconds a SQLite connection waits on another's lock: while backing up, for a writer's
#: checkpoint; while restoring, before the database counts as in use.
SQLITE_LOCK_WAIT = 5.0
#: libpq's connect_timeout unless the URL sets one: an unreachable server is an error
#: within seconds, never a hang.
PG_CONNECT_TIMEOUT = "10"
#: How long pg_dump / pg_restore wait for a table lock before failing (milliseconds).
PG_LOCK_WAIT_MS = 30_000
#: The first bytes of each kind of backup, to say which command a file belongs to.
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


class BackupError(StoreError):
    """A backup or restore was refused or failed.

    The message is one line for the operator saying why, the database URL's password masked.
    """


class DatabaseCopy(msgspec.Struct, frozen=True):
    """What :func:`backup_database` or :func:`restore_database` copied."""

    #: The database's URL as text, password masked, for messages.
    database: str
    #: The URL to reach the database with (PostgreSQL: with a connect timeout), e.g. to
    #: read its revision back after a restore.
    url: URL
    #: The schema revision in the backup; ``None`` when a backed-up database was never
    #: migrated (a restore refuses such a backup, so it always has one).
    revision: str | None


def backup_database(url: str | URL, path: Path, *, force: bool = False) -> DatabaseCopy:
    """Copy the whole database at ``url`` to the file ``path``; writers may keep writing.

    ``path`` appears complete or not at all; it is replaced only with ``force``. SQLite: a
    consistent snapshot through SQLite's backup API, in one file. PostgreSQL: pg_dump's
    custom format (pg_dump and pg_restore must be on PATH).
    """
    database = _database(url)
    if path.exists() and not force:
        raise BackupError(f"{path} already exists; refusing to overwrite it without --force")
    with _staged(path, replace=force) as staging:
        revision = database.backup(staging)
    return DatabaseCopy(database=database.shown, url=database.url, revision=revision)


def restore_database(url: str | URL, path: Path, *, force: bool = False) -> DatabaseCopy:
    """Replace the database at ``url`` with the backup in ``path``. Stop its gateways first.

    Refuses while another connection uses the database, a backup of the other backend or
    of a schema revision this version does not know, and, without ``force``, a database
    that already holds data. SQLite: the file is replaced atomically. PostgreSQL:
    pg_restore --clean in a single transaction (pg_restore must be on PATH).
    """
    database = _database(url)
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    revision = database.restore(path, force=force)
    return DatabaseCopy(database=database.shown, url=database.url, revision=revision)


# --------------------------------------------------------------------------------------------
# Which database


def _database(url_text: str | URL) -> _Sqlite | _Postgres:
    try:
        url = make_url(url_text)
    except ArgumentError:
        raise BackupError(f"cannot parse database URL {mask_url(url_text)!r}") from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return _Sqlite(url)
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return _Postgres(url)
    raise BackupError(
        f"cannot back up or restore {mask_url(url)!r}: not a SQLite or PostgreSQL URL"
    )


def _known_revision(path: Path, revision: str | None) -> str:
    if revision is None:
        raise BackupError(f"{path} holds no ArkRelay schema (no alembic_version row)")
    if revision not in {m.revision for m in history()}:
        raise BackupError(
            f"{path} has schema revision {revision!r}, which this arkrelay does not know "
            "(made by a newer version?); restore it with the version that made it"
        )
    return revision


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _staged(path: Path, *, replace: bool) -> Iterator[Path]:
    """A temporary file beside ``path`` that becomes ``path`` if the block succeeds.

    Without ``replace``, linking it into place fails rather than clobber a file that
    appeared meanwhile. A failed block leaves ``path`` as it was.
    """
    if path.is_dir():
        raise BackupError(f"{path} is a directory")
    parent = path.parent
    if not parent.is_dir():
        raise BackupError(f"{parent}: no such directory")
    try:
        fd, name = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise BackupError(f"cannot write in {parent}: {exc.strerror or exc}") from None
    os.close(fd)  # mode 0600: a backup holds everything the gateway knows
    staging = Path(name)
    try:
        yield staging
        try:
            _fsync(staging)
            if replace:
                staging.replace(path)
            else:
                os.link(staging, path)
            _fsync(parent)
        except FileExistsError:
            raise BackupError(
                f"{path} already exists; refusing to overwrite it without --force"
            ) from None
        except OSError as exc:
            raise BackupError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        staging.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# SQLite


class _Sqlite:
    def __init__(self, url: URL) -> None:
        name = url.database
        if not name or name == ":memory:" or name.startswith("file:"):
            raise BackupError(
                f"cannot back up or restore {mask_url(url)!r}: not a database file path"
            )
        self.url = url
        self.path = Path(name)
        self.shown = mask_url(url)

    def backup(self, out: Path) -> str | None:
        if not self.path.is_file():
            raise BackupError(f"no SQLite database at {self.path}")
        try:
            with contextlib.closing(_connect(self.path, "rw")) as source:
                target = sqlite3.connect(out)
                try:
                    # One step (pages=-1) copies one snapshot under one read lock; WAL lets
                    # the gateway commit meanwhile, and its commits still in the WAL are in.
                    source.backup(target)
                    # The copy stands alone: no -wal file beside it, ever.
                    target.execute("PRAGMA journal_mode=DELETE")
                    _check_integrity(target, out)
                    return _revision(target)
                finally:
                    target.close()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"cannot back up {self.path}: {exc}") from None

    def restore(self, backup: Path, *, force: bool) -> str:
        revision = _known_revision(backup, self._backup_revision(backup))
        if self.path.exists():
            self._quiesce(force)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _staged(self.path, replace=True) as staging:
            try:
                with contextlib.closing(_connect(backup, "ro")) as source:
                    target = sqlite3.connect(staging)
                    try:
                        source.backup(target)
                    finally:
                        target.close()
            except sqlite3.DatabaseError as exc:
                raise BackupError(f"cannot read {backup}: {exc}") from None
            # A WAL or journal left beside the old file (a killed gateway's) would be
            # replayed into the new one: they go first, the file is swapped after.
            for suffix in ("-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        return revision

    def _backup_revision(self, backup: Path) -> str | None:
        magic = _magic(backup)
        if magic.startswith(PG_DUMP_MAGIC):
            raise BackupError(
                f"{backup} is a PostgreSQL backup (pg_dump); it restores into PostgreSQL only"
            )
        if magic != SQLITE_MAGIC:
            raise BackupError(f"{backup} is not a SQLite database")
        try:
            with contextlib.closing(_connect(backup, "ro")) as source:
                _check_integrity(source, backup)
                return _revision(source)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"cannot read {backup}: {exc}") from None

    def _quiesce(self, force: bool) -> None:
        """Refuse a database in use (or holding data, without ``force``), then fold its WAL
        in, so that until the swap it is a complete database on its own."""
        connection = _connect(self.path, "rw", timeout=SQLITE_LOCK_WAIT)
        try:
            # An exclusive lock on the file cannot be had while any other connection, even
            # an idle one of a running gateway, has the database open in WAL mode.
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")
            try:
                connection.execute("BEGIN EXCLUSIVE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise BackupError(
                    f"{self.path} is in use by another process (a running gateway?); "
                    "stop it before restoring"
                ) from None
            tables = connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
            connection.execute("COMMIT")
            if tables and not force:
                raise BackupError(
                    f"{self.path} already holds data; restoring replaces all of it: add --force"
                )
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"cannot open {self.path}: {exc}") from None
        finally:
            connection.close()


def _connect(path: Path, mode: str, timeout: float = SQLITE_LOCK_WAIT) -> sqlite3.Connection:
    """Open an existing file only (``mode`` ro or rw: never create one by mistake)."""
    uri = f"file:{quote(str(path.resolve()))}?mode={mode}"
    return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)


def _check_integrity(connection: sqlite3.Connection, path: Path) -> None:
    result = connection.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise BackupError(f"{path} fails SQLite's integrity check: {result}")


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return None if row is None else str(row[0])


# --------------------------------------------------------------------------------------------
# PostgreSQL


class _Postgres:
    def __init__(self, url: URL) -> None:
        self.shown = mask_url(url)
        if "connect_timeout" not in url.query:
            url = url.update_query_dict({"connect_timeout": PG_CONNECT_TIMEOUT})
        self.url = url.set(drivername="postgresql+psycopg")
        self.conninfo, self.env = _libpq(url)

    def backup(self, out: Path) -> str | None:
        pg_dump = _binary("pg_dump")
        _run(
            [
                pg_dump,
                "--format=custom",
                "--no-password",
                f"--lock-wait-timeout={PG_LOCK_WAIT_MS}",
                f"--file={out}",
                f"--dbname={self.conninfo}",
            ],
            self.env,
        )
        # Reading the archive back proves pg_restore can, and names its schema revision.
        return self._dump_revision(out)

    def restore(self, backup: Path, *, force: bool) -> str:
        magic = _magic(backup)
        if magic == SQLITE_MAGIC:
            raise BackupError(f"{backup} is a SQLite database; it restores into SQLite only")
        if not magic.startswith(PG_DUMP_MAGIC):
            raise BackupError(
                f"{backup} is not a pg_dump archive (custom format, as `arkrelay db backup` writes)"
            )
        tables = self._dump_tables(backup)
        revision = _known_revision(backup, self._dump_revision(backup))
        self._check_target(tables, force)
        env = dict(self.env)
        # pg_restore has no lock-wait option; a lock_timeout fails it instead of queueing
        # behind a session that holds a table.
        options = os.environ.get("PGOPTIONS", "")
        env["PGOPTIONS"] = f"{options} -c lock_timeout={PG_LOCK_WAIT_MS}".strip()
        _run(
            [
                _binary("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--exit-on-error",
                "--no-password",
                f"--dbname={self.conninfo}",
                str(backup),
            ],
            env,
        )
        return revision

    def _dump_tables(self, backup: Path) -> set[str]:
        listing = _run([_binary("pg_restore"), "--list", str(backup)], self.env)
        # "214; 1259 38647 TABLE public alembic_version owner"
        return {m[2] for m in re.finditer(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ", listing, re.M)}

    def _dump_revision(self, backup: Path) -> str | None:
        data = _run(
            [
                _binary("pg_restore"),
                "--data-only",
                "--table=alembic_version",
                "--file=-",
                str(backup),
            ],
            self.env,
        )
        match = re.search(
            r"^COPY \S*alembic_version \(version_num\) FROM stdin;\n(.*?)^\\\.$", data, re.M | re.S
        )
        rows = match[1].split() if match else []
        return rows[0] if len(rows) == 1 else None

    def _check_target(self, dump_tables: set[str], force: bool) -> None:
        engine = create_engine_for(self.url)
        try:
            with engine.connect() as connection:
                others = connection.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    )
                )
                existing = set(
                    connection.scalars(
                        sa.text(
                            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                        )
                    )
                )
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise BackupError(f"cannot connect to {self.shown}: {reason}") from None
        finally:
            engine.dispose()
        if others:
            raise BackupError(
                f"{self.shown} is in use ({others} other connection(s): a running gateway?); "
                "stop every gateway using it before restoring"
            )
        extra = sorted(existing - dump_tables)
        if extra:
            raise BackupError(
                f"{self.shown} has tables the backup lacks ({', '.join(extra)}); restore into "
                "an empty database"
            )
        if existing and not force:
            raise BackupError(
                f"{self.shown} already holds data; restoring replaces all of it: add --force"
            )


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq conninfo string for ``url`` and the environment for the rest.

    The password never goes on a command line (any user can read those); it travels in
    PGPASSWORD. The URL's query parameters are libpq's own (psycopg passes them through).
    """
    params: dict[str, str] = {}
    for key, value in (
        ("host", url.host),
        ("port", url.port),
        ("user", url.username),
        ("dbname", url.database),
    ):
        if value is not None:
            params[key] = str(value)
    for key, value in url.query.items():
        if not isinstance(value, str):
            raise BackupError(f"database URL: {key} is given more than once")
        params[key] = value
    password = params.pop("password", None) or url.password
    conninfo = " ".join(f"{key}={_conninfo_value(value)}" for key, value in params.items())
    env = {**os.environ}
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return conninfo, env


def _conninfo_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} not found on PATH; install the PostgreSQL client tools "
            "(Debian/Ubuntu: apt-get install postgresql-client), as new as the server"
        )
    return found


def _run(argv: list[str], env: dict[str, str]) -> str:
    """Run a PostgreSQL client tool; its own error, one line, if it fails."""
    name = Path(argv[0]).name
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackupError(f"cannot run {name}: {exc.strerror or exc}") from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        lines = [line.removeprefix(f"{name}: error: ").removeprefix(f"{name}: ") for line in lines]
        problem = " ".join(lines) or f"exit status {result.returncode}"
        raise BackupError(f"{name} failed: {problem}")
    return result.stdout
