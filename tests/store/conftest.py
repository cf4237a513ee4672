"""Database fixtures: a fresh SQLite file, or a fresh PostgreSQL database, per test."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from arkrelay_core.store import create_engine_for, session_factory, upgrade
from arkrelay_core.store.models import Asset, CeremonySession, Challenge, Intent, Vtxo

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


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database migrated to head."""
    upgrade(db_url)
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine):
    return session_factory(engine)


class Rows:
    """Builders of valid rows; each call makes fresh ids unless told otherwise."""

    now = 1_760_000_000

    @staticmethod
    def hex64() -> str:
        return secrets.token_hex(32)

    def intent(self, *, author: str | None = None, action_id: str | None = None) -> Intent:
        event_id = self.hex64()
        return Intent(
            event_id=event_id,
            author=author or self.hex64(),
            action_id=action_id or secrets.token_hex(16),
            type="ark:transfer",
            params={"asset_id": "gBTC", "amount": 1000, "fee": {"asset_id": "gBTC", "amount": 10}},
            raw_event={"id": event_id, "kind": 31510, "tags": [["d", "x"]]},
            network="regtest",
            expires_at=self.now + 900,
            received_at=self.now,
        )

    def session(self, intent: Intent, *, state: str = "intent_received") -> CeremonySession:
        return CeremonySession(
            id="sess_" + intent.event_id[:24],
            intent_event_id=intent.event_id,
            author=intent.author,
            type=intent.type,
            state=state,
            step_total=2,
            scheme="nip44",
            created_at=self.now,
            updated_at=self.now,
            expires_at=self.now + 900,
        )

    def challenge(self, session_id: str, step_index: int) -> Challenge:
        digest = self.hex64()
        return Challenge(
            session_id=session_id,
            step_index=step_index,
            type="sign_payload",
            payload_to_sign=digest,
            payload_ref="sha256:" + digest,
            content={"session_id": session_id, "step_index": step_index},
            created_at=self.now,
            expires_at=self.now + 120,
        )

    def asset(self, *, ticker: str = "gBTC") -> Asset:
        return Asset(
            asset_id=self.hex64(),
            ticker=ticker,
            name="Gateway BTC",
            decimals=0,
            is_gateway_asset=True,
            created_at=self.now,
        )

    def vtxo(self, asset_id: str, amount: int, *, status: str = "spendable") -> Vtxo:
        return Vtxo(
            vtxo_id=f"{self.hex64()}:0",
            owner=self.hex64(),
            asset_id=asset_id,
            amount=amount,
            status=status,
            expires_at=self.now + 86_400,
            created_at=self.now,
        )


@pytest.fixture
def rows() -> Rows:
    return Rows()
