"""Engine factory: URL handling and the connection settings each database gets."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from arkrelay_core.store import StoreError, create_engine_for, mask_url, session_factory
from arkrelay_core.store.engine import SQLITE_BUSY_TIMEOUT_MS
from arkrelay_core.store.models import Asset


def pragma(session_or_connection, name: str):
    return session_or_connection.execute(text(f"PRAGMA {name}")).scalar_one()


def test_sqlite_connections_use_wal_foreign_keys_busy_timeout_and_normal_sync(sqlite_url):
    engine = create_engine_for(sqlite_url)
    try:
        # Two connections at once: every pooled connection is configured, not just the first.
        with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                assert pragma(connection, "journal_mode") == "wal"
                assert pragma(connection, "foreign_keys") == 1
                assert pragma(connection, "busy_timeout") == SQLITE_BUSY_TIMEOUT_MS
                assert pragma(connection, "synchronous") == 1  # NORMAL
    finally:
        engine.dispose()


def test_sqlite_file_database_gets_its_directory_created(tmp_path):
    path = tmp_path / "state" / "nested" / "arkrelay.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
    finally:
        engine.dispose()
    assert path.is_file()


def test_in_memory_sqlite_is_accepted():
    engine = create_engine_for("sqlite://")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://gateway:hunter2@db.example/arkrelay",
        "postgresql+asyncpg://gateway:hunter2@db.example/arkrelay",
        "postgresql+psycopg2://gateway:hunter2@db.example/arkrelay",
        "sqlite+aiosqlite:///arkrelay.db",
    ],
)
def test_unsupported_url_is_rejected_naming_the_url_without_its_password(url):
    with pytest.raises(StoreError) as caught:
        create_engine_for(url)
    message = str(caught.value)
    assert "hunter2" not in message
    assert url.replace("hunter2", "***") in message


def test_unparsable_url_is_a_store_error_without_the_password():
    with pytest.raises(StoreError) as caught:
        create_engine_for("not a url :hunter2@")
    assert "cannot parse database URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_mask_url_hides_passwords_in_text_and_parsed_urls():
    assert mask_url("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert mask_url("postgresql://u:p@ss:w@h/db") == "postgresql://u:***@h/db"
    assert mask_url(make_url("postgresql://u:s3cret@h/db")) == "postgresql://u:***@h/db"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgres_urls_use_psycopg_3(scheme):
    engine = create_engine_for(f"{scheme}://gateway:pw@db.example:5432/arkrelay")
    try:
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "psycopg"
        assert engine.url.password == "pw"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_plain_postgresql_url_connects_through_psycopg(postgres_url):
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    engine = create_engine_for(plain)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT current_database()")).scalar_one() in plain
    finally:
        engine.dispose()


def test_session_objects_stay_readable_after_commit(engine, rows):
    make_session = session_factory(engine)
    asset = rows.asset()
    with make_session() as session, session.begin():
        session.add(asset)
    # Closed and committed; a worker thread hands this object back to trio code.
    assert asset.ticker == "gBTC"
    with make_session() as session:
        assert isinstance(session, Session)
        assert session.get(Asset, asset.asset_id).name == "Gateway BTC"
