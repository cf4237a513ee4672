"""`arkrelay db backup` and `arkrelay db restore` on SQLite and PostgreSQL: what goes in
comes back out, a database in use or holding data is not overwritten by accident, and every
refusal is one line saying why."""

from __future__ import annotations

import secrets
import shutil
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from arkrelay_core.cli import cli
from arkrelay_core.store import (
    Base,
    create_engine_for,
    current,
    head,
    history,
    session_factory,
    upgrade,
)
from arkrelay_core.store.backup import _libpq
from arkrelay_core.store.models import OutboxEvent

needs_pg_tools = pytest.mark.skipif(
    shutil.which("pg_dump") is None or shutil.which("pg_restore") is None,
    reason="pg_dump / pg_restore not installed",
)


def arkrelay(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(cli, ["--log-level", "warning", *args])


def assert_refused(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: "), result.stderr
    assert message in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def backup(url: str, path: Path, *extra: str) -> Result:
    return arkrelay("db", "backup", str(path), "--database", url, *extra)


def restore(url: str, path: Path, *extra: str) -> Result:
    return arkrelay("db", "restore", str(path), "--database", url, *extra)


def fill(url: str, rows: Any) -> None:
    """Migrate, then store a little of everything: an asset, VTXOs, an intent with its
    session and challenges, and outbox rows (an autoincrement sequence)."""
    upgrade(url)
    engine = create_engine_for(url)
    try:
        asset = rows.asset(ticker=f"T{secrets.token_hex(4)}")  # fill() may run twice
        intent = rows.intent()
        session = rows.session(intent, state="ark_tx_prepared")
        objects = [
            asset,
            rows.vtxo(asset.asset_id, 2**40),
            rows.vtxo(asset.asset_id, 7, status="spent"),
            intent,
            session,
            rows.challenge(session.id, 0),
            rows.challenge(session.id, 1),
            *(outbox_row(rows) for _ in range(3)),
        ]
        with session_factory(engine)() as db, db.begin():
            db.add_all(objects)
    finally:
        engine.dispose()


def outbox_row(rows: Any) -> OutboxEvent:
    event_id = rows.hex64()
    return OutboxEvent(
        event_id=event_id,
        kind=31511,
        event={"id": event_id, "kind": 31511, "tags": [], "content": "x"},
        created_at=rows.now,
        next_attempt_at=rows.now,
        accepted_relays=["wss://relay.example"],
    )


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, the schema revision included."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            tables = {
                table.name: [
                    tuple(row)
                    for row in connection.execute(
                        sa.select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for table in Base.metadata.sorted_tables
            }
            tables["alembic_version"] = [
                tuple(row) for row in connection.execute(sa.text("SELECT * FROM alembic_version"))
            ]
            return tables
    finally:
        engine.dispose()


def wipe(url: str) -> None:
    """Lose the database: delete the SQLite file (and its WAL), or drop every table."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    engine = create_engine_for(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def table_count(url: str) -> int:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return len(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture
def pg_tools(db_url: str) -> None:
    if not db_url.startswith("sqlite") and (
        shutil.which("pg_dump") is None or shutil.which("pg_restore") is None
    ):
        pytest.skip("pg_dump / pg_restore not installed")


@pytest.mark.usefixtures("pg_tools")
def test_backup_then_wipe_then_restore_gives_every_row_back(
    db_url: str, rows: Any, tmp_path: Path
) -> None:
    fill(db_url, rows)
    before = snapshot(db_url)
    assert sum(len(r) for r in before.values()) >= 10
    path = tmp_path / "arkrelay.backup"

    made = backup(db_url, path)
    assert made.exit_code == 0, made.output
    assert made.stdout.endswith(f"(schema {head()}) to {path}\n")
    assert path.stat().st_mode & 0o077 == 0  # not readable by others

    wipe(db_url)
    assert table_count(db_url) == 0

    result = restore(db_url, path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"restored {path} (schema {head()}) into ")
    assert result.stdout.endswith("; up to date\n")
    assert snapshot(db_url) == before
    assert current(db_url) == head()

    # The restored database carries on: its sequences continue after the restored rows.
    engine = create_engine_for(db_url)
    try:
        with session_factory(engine)() as db, db.begin():
            new = outbox_row(rows)
            db.add(new)
        assert new.id > max(row[0] for row in before["outbox"])
    finally:
        engine.dispose()


@pytest.mark.usefixtures("pg_tools")
def test_restore_replaces_a_database_holding_data_only_with_force(
    db_url: str, rows: Any, tmp_path: Path
) -> None:
    fill(db_url, rows)
    before = snapshot(db_url)
    path = tmp_path / "arkrelay.backup"
    assert backup(db_url, path).exit_code == 0
    fill(db_url, rows)  # more rows after the backup
    after = snapshot(db_url)
    assert after != before

    assert_refused(restore(db_url, path), "already holds data; restoring replaces all of it")
    assert snapshot(db_url) == after

    result = restore(db_url, path, "--force")
    assert result.exit_code == 0, result.output
    assert snapshot(db_url) == before


@pytest.mark.usefixtures("pg_tools")
def test_restore_refuses_a_database_in_use(db_url: str, rows: Any, tmp_path: Path) -> None:
    fill(db_url, rows)
    path = tmp_path / "arkrelay.backup"
    assert backup(db_url, path).exit_code == 0
    engine = create_engine_for(db_url)
    try:
        # An idle connection, as a running gateway's pool holds them.
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
            connection.commit()
            assert_refused(restore(db_url, path, "--force"), "is in use")
    finally:
        engine.dispose()
    assert restore(db_url, path, "--force").exit_code == 0


@pytest.mark.usefixtures("pg_tools")
def test_backup_never_overwrites_without_force(db_url: str, rows: Any, tmp_path: Path) -> None:
    fill(db_url, rows)
    path = tmp_path / "arkrelay.backup"
    path.write_bytes(b"an older backup")

    assert_refused(backup(db_url, path), "already exists; refusing to overwrite it")
    assert path.read_bytes() == b"an older backup"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    assert backup(db_url, path, "--force").exit_code == 0
    wipe(db_url)
    assert restore(db_url, path).exit_code == 0
    assert current(db_url) == head()


@pytest.mark.usefixtures("pg_tools")
def test_restore_refuses_what_is_not_a_backup_of_its_kind(
    db_url: str, rows: Any, tmp_path: Path
) -> None:
    fill(db_url, rows)
    text = tmp_path / "notes.txt"
    text.write_text("not a backup\n")
    sqlite_file = tmp_path / "other.db"
    sqlite3.connect(sqlite_file).close()
    sqlite3.connect(sqlite_file).execute("CREATE TABLE t (x)").connection.close()
    before = snapshot(db_url)

    if db_url.startswith("sqlite"):
        assert_refused(restore(db_url, text, "--force"), "notes.txt is not a SQLite database")
        # A SQLite file, but no ArkRelay schema in it.
        assert_refused(restore(db_url, sqlite_file, "--force"), "holds no ArkRelay schema")
    else:
        assert_refused(restore(db_url, text, "--force"), "notes.txt is not a pg_dump archive")
        assert_refused(restore(db_url, sqlite_file, "--force"), "is a SQLite database")
    assert_refused(restore(db_url, tmp_path / "missing"), "missing: no such backup file")
    assert snapshot(db_url) == before


@pytest.mark.usefixtures("pg_tools")
def test_restore_refuses_a_schema_this_version_does_not_know(
    db_url: str, rows: Any, tmp_path: Path
) -> None:
    fill(db_url, rows)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    shown = arkrelay("db", "current", "--database", db_url)
    assert (
        shown.stdout
        == f"9999 (unknown to this version, whose head is {head()}: made by a newer arkrelay?)\n"
    )
    path = tmp_path / "arkrelay.backup"
    made = backup(db_url, path)
    assert made.exit_code == 0, made.output
    assert "(schema 9999)" in made.stdout
    wipe(db_url)

    assert_refused(restore(db_url, path), "schema revision '9999', which this arkrelay does not")
    assert table_count(db_url) == 0


@pytest.mark.usefixtures("pg_tools")
def test_a_backup_of_an_older_schema_restores_as_it_was(db_url: str, tmp_path: Path) -> None:
    """What an operator going back after an upgrade restores: the pre-upgrade backup."""
    older = history()[-2].revision
    upgrade(db_url, older)
    path = tmp_path / "arkrelay.backup"
    assert backup(db_url, path).exit_code == 0
    upgrade(db_url)
    wipe(db_url)

    result = restore(db_url, path)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(
        f"(schema {older}) into {db_url}; behind (head is {head()}); "
        "`arkrelay db upgrade` (or the gateway, at start) migrates it\n"
    )
    assert current(db_url) == older
    assert arkrelay("db", "upgrade", "--database", db_url).exit_code == 0
    assert current(db_url) == head()


# --------------------------------------------------------------------------------------------
# SQLite


def test_sqlite_backup_is_a_consistent_snapshot_of_a_live_database(
    sqlite_url: str, rows: Any, tmp_path: Path
) -> None:
    """Commits still in the WAL are in the copy, a transaction still open is not, and the
    copy is one file (no -wal beside it) in rollback-journal mode."""
    fill(sqlite_url, rows)
    database = make_url(sqlite_url).database
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")  # commits stay in the WAL
        writer.execute("BEGIN")
        writer.execute("UPDATE vtxos SET status = 'spent'")
        writer.execute("COMMIT")
        assert Path(f"{database}-wal").stat().st_size > 0
        writer.execute("BEGIN IMMEDIATE")  # a writer in the middle of a transaction
        writer.execute("DELETE FROM vtxos")
        committed = snapshot(sqlite_url)

        path = tmp_path / "live.backup"
        result = backup(sqlite_url, path)
        assert result.exit_code == 0, result.output
        writer.execute("ROLLBACK")
    finally:
        writer.close()

    assert not Path(f"{path}-wal").exists()
    copy = sqlite3.connect(path)
    try:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        statuses = copy.execute("SELECT DISTINCT status FROM vtxos").fetchall()
    finally:
        copy.close()
    assert statuses == [("spent",)]
    wipe(sqlite_url)
    assert restore(sqlite_url, path).exit_code == 0
    assert snapshot(sqlite_url) == committed


def test_sqlite_restore_drops_a_stale_wal_left_beside_a_lost_database(
    sqlite_url: str, rows: Any, tmp_path: Path
) -> None:
    """A gateway killed outright leaves arkrelay.db-wal behind; replayed into the restored
    file it would bring back (or corrupt) pages of the old database."""
    fill(sqlite_url, rows)
    before = snapshot(sqlite_url)
    path = tmp_path / "arkrelay.backup"
    assert backup(sqlite_url, path).exit_code == 0

    database = make_url(sqlite_url).database
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("DELETE FROM challenges")
        stale_wal = Path(f"{database}-wal").read_bytes()
    finally:
        writer.close()
    assert stale_wal
    wipe(sqlite_url)
    Path(f"{database}-wal").write_bytes(stale_wal)

    result = restore(sqlite_url, path)
    assert result.exit_code == 0, result.output
    assert snapshot(sqlite_url) == before


def test_sqlite_backup_of_a_missing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nothing.db'}"
    assert_refused(backup(url, tmp_path / "b"), f"no SQLite database at {tmp_path / 'nothing.db'}")
    assert not (tmp_path / "nothing.db").exists()
    assert_refused(backup(url, tmp_path / "no-dir" / "b"), "no-dir: no such directory")


def test_the_database_comes_from_the_config(tmp_path: Path, rows: Any) -> None:
    config = tmp_path / "gw.toml"
    config.write_text('[gateway]\ndata_dir = "state"\n')
    url = f"sqlite:///{tmp_path / 'state' / 'arkrelay.db'}"
    fill(url, rows)
    before = snapshot(url)
    path = tmp_path / "b"
    made = arkrelay("db", "backup", str(path), "--config", str(config))
    assert made.exit_code == 0, made.output
    wipe(url)
    result = arkrelay("db", "restore", str(path), "--config", str(config))
    assert result.exit_code == 0, result.output
    assert snapshot(url) == before


# --------------------------------------------------------------------------------------------
# PostgreSQL


def test_the_password_never_goes_on_the_command_line() -> None:
    url = make_url("postgresql+psycopg://ark:s3cr%27et@db.internal:5433/ark relay?sslmode=require")
    conninfo, env = _libpq(url)
    assert "s3cr" not in conninfo
    assert env["PGPASSWORD"] == "s3cr'et"
    assert conninfo == (
        "host='db.internal' port='5433' user='ark' dbname='ark relay' sslmode='require'"
    )


@needs_pg_tools
def test_pg_backup_of_an_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://postgres:pw@127.0.0.1:{port}/arkrelay"
    result = backup(url, tmp_path / "b")
    assert_refused(result, f'pg_dump failed: connection to server at "127.0.0.1", port {port}')
    assert "pw" not in result.stderr.replace("password", "")
    assert list(tmp_path.iterdir()) == []


def test_pg_tools_missing_from_path(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1/arkrelay"
    empty = tmp_path / "bin"
    empty.mkdir()
    no_tools = {"PATH": str(empty)}
    result = arkrelay("db", "backup", str(tmp_path / "b"), "--database", url, env=no_tools)
    assert_refused(result, "pg_dump not found on PATH; install the PostgreSQL client tools")
    assert not (tmp_path / "b").exists()
    dump = tmp_path / "arkrelay.dump"
    dump.write_bytes(b"PGDMP")
    result = arkrelay("db", "restore", str(dump), "--database", url, env=no_tools)
    assert_refused(result, "pg_restore not found on PATH")
