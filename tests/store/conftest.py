"""Store fixtures: migrated engines and valid rows (databases come from tests/conftest.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from arkrelay_core.store import create_engine_for, session_factory, upgrade
from arkrelay_core.store.models import Asset, CeremonySession, Challenge, Intent, Vtxo


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
