"""Fixtures shared by the whole suite: fresh databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from arkrelay_core.store import create_engine_for

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'arkrelay.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database created for this test on the server of ARKRELAY_TEST_POSTGRES_URL."""
    server_url = make_url(os.environ.get("ARKRELAY_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    if "connect_timeout" not in server_url.query:
        server_url = server_url.update_query_dict({"connect_timeout": "5"})
    admin = create_engine_for(server_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"arkrelay_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL at {server_url.render_as_string()} unreachable: {exc.orig}"
        if os.environ.get("ARKRELAY_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (ARKRELAY_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")
