"""Migrations build exactly the schema the models describe, forwards and backwards."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Engine, inspect

from arkrelay_core.store import (
    Base,
    StoreError,
    create_engine_for,
    current,
    downgrade,
    head,
    history,
    upgrade,
)

MODEL_TABLES = set(Base.metadata.tables)


def table_names(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_the_models_define_the_tables_the_design_names():
    assert {
        "events_in",
        "intents",
        "sessions",
        "challenges",
        "batches",
        "assets",
        "vtxos",
        "invoices",
        "outbox",
        "settlements",
    } <= MODEL_TABLES


def test_upgrade_creates_every_table_without_an_ini_file(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert current(db_url) is None

    upgrade(db_url)

    assert table_names(db_url) == MODEL_TABLES | {"alembic_version"}
    assert current(db_url) == head()


def test_upgrade_twice_changes_nothing(db_url):
    upgrade(db_url)
    upgrade(db_url)
    assert current(db_url) == head()
    assert table_names(db_url) == MODEL_TABLES | {"alembic_version"}


def test_downgrade_to_base_removes_every_table_and_upgrade_rebuilds(db_url):
    upgrade(db_url)

    downgrade(db_url, "base")

    assert table_names(db_url) <= {"alembic_version"}
    assert current(db_url) is None

    upgrade(db_url)
    assert table_names(db_url) == MODEL_TABLES | {"alembic_version"}
    assert current(db_url) == head()


def test_models_and_migrations_have_not_drifted(engine: Engine):
    opts = {
        "compare_type": True,
        "compare_server_default": True,
        "autogenerate_plugins": ["alembic.autogenerate.*", "alembic.ext.checkconstraint_byname"],
    }
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=opts)
        assert compare_metadata(context, Base.metadata) == []


def test_check_constraints_match_the_models_by_name_and_on_sqlite_by_text(engine: Engine):
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        expected = {
            c.name: str(c.sqltext) for c in table.constraints if isinstance(c, CheckConstraint)
        }
        reflected = {c["name"]: c["sqltext"] for c in inspector.get_check_constraints(table.name)}
        assert set(reflected) == set(expected), table.name
        # PostgreSQL rewrites a CHECK's text; SQLite keeps it as written.
        if engine.dialect.name == "sqlite":
            assert reflected == expected, table.name


def test_upgrade_to_an_unknown_revision_is_a_store_error(sqlite_url):
    with pytest.raises(StoreError, match="9999"):
        upgrade(sqlite_url, "9999")


def test_history_is_one_chain_from_base_to_head():
    migrations = history()

    assert migrations[0].down_revision is None
    assert migrations[-1].revision == head()
    for parent, child in pairwise(migrations):
        assert child.down_revision == parent.revision
    assert migrations[0].revision == "0001"
    assert migrations[0].description == "initial schema"


def test_upgrade_accepts_an_engine_and_leaves_it_usable():
    # An in-memory database lives only as long as its engine: the migration must use it.
    engine = create_engine_for("sqlite://")
    try:
        upgrade(engine)
        assert current(engine) == head()
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= MODEL_TABLES
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_instances_starting_together_all_upgrade_cleanly(postgres_url):
    # Separate processes, as separate gateway instances sharing one database would be.
    script = "import sys; from arkrelay_core.store import upgrade; upgrade(sys.argv[1])"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, postgres_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(p.communicate(timeout=60)[1], p.returncode) for p in processes]

    assert [code for _, code in outcomes] == [0] * 4, [err for err, _ in outcomes]
    assert current(postgres_url) == head()
