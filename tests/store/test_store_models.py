"""What the schema refuses and what it keeps intact, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from arkrelay_core.store.models import (
    SESSION_STATES,
    SETTLEMENT_STATES,
    VTXO_STATUSES,
    CeremonySession,
    EventIn,
    Intent,
    OutboxEvent,
    Settlement,
    Vtxo,
)


def add_all(db, *objects) -> None:
    with db() as session, session.begin():
        session.add_all(objects)


def test_second_intent_with_the_same_author_and_action_id_is_rejected(db, rows):
    author = rows.hex64()
    add_all(db, rows.intent(author=author, action_id="pay-42"))

    # PostgreSQL names the constraint, SQLite the columns.
    which = r"uq_intents_author_action_id|intents\.author, intents\.action_id"
    with pytest.raises(IntegrityError, match=which):
        add_all(db, rows.intent(author=author, action_id="pay-42"))

    # The pair is the key, not the action_id alone.
    add_all(db, rows.intent(author=rows.hex64(), action_id="pay-42"))
    with db() as session:
        assert len(session.scalars(select(Intent).where(Intent.action_id == "pay-42")).all()) == 2


def test_an_event_id_is_stored_once(db, rows):
    event_id = rows.hex64()

    def seen() -> EventIn:
        return EventIn(
            id=event_id, pubkey=rows.hex64(), kind=31510, created_at=rows.now, received_at=rows.now
        )

    add_all(db, seen())
    with pytest.raises(IntegrityError):
        add_all(db, seen())


def test_a_session_step_has_one_challenge(db, rows):
    intent = rows.intent()
    sess = rows.session(intent)
    add_all(db, intent, sess, rows.challenge(sess.id, 0), rows.challenge(sess.id, 1))

    with pytest.raises(IntegrityError):
        add_all(db, rows.challenge(sess.id, 1))


def test_foreign_keys_are_enforced(db, rows):
    orphan = rows.session(rows.intent())  # its intent was never stored
    with pytest.raises(IntegrityError):
        add_all(db, orphan)

    with pytest.raises(IntegrityError):
        add_all(db, rows.vtxo(asset_id=rows.hex64(), amount=1))


def test_amounts_beyond_32_bits_round_trip_exactly(db, rows):
    asset = rows.asset()
    big = rows.vtxo(asset.asset_id, 2**62)
    add_all(db, asset, big)

    with db() as session:
        assert session.get(Vtxo, big.vtxo_id).amount == 2**62


def test_negative_amount_is_refused(db, rows):
    asset = rows.asset()
    add_all(db, asset)
    with pytest.raises(IntegrityError):
        add_all(db, rows.vtxo(asset.asset_id, -1))


def test_json_columns_round_trip_nested_data(db, rows):
    params = {
        "asset_id": "gBTC",
        "amount": 2**62,
        "fee": {"asset_id": "gBTC", "amount": 10},
        "vtxo_ids": ["a" * 64 + ":0", "b" * 64 + ":1"],
        "memo": "café ☕ — ünïcode",
        "flags": [True, False, None],
        "ratio": 0.25,
        "deep": {"a": [{"b": {"c": []}}]},
    }
    intent = rows.intent()
    intent.params = params
    add_all(db, intent)

    with db() as session:
        assert session.get(Intent, intent.event_id).params == params


def test_outbox_defaults_and_ids_increase(db, rows):
    events = [
        OutboxEvent(
            event_id=rows.hex64(),
            kind=31340,
            event={"id": "x", "tags": [["d", str(n)]]},
            created_at=rows.now,
            next_attempt_at=rows.now,
        )
        for n in range(3)
    ]
    add_all(db, *events)

    with db() as session:
        stored = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
    assert [e.event_id for e in stored] == [e.event_id for e in events]
    assert all(e.attempts == 0 and e.accepted_relays == [] and e.acked_at is None for e in stored)


def test_every_documented_state_and_status_is_storable(db, rows):
    asset = rows.asset()
    intents = [rows.intent() for _ in SESSION_STATES]
    add_all(
        db,
        asset,
        *intents,
        *(rows.session(i, state=state) for i, state in zip(intents, SESSION_STATES, strict=True)),
        *(rows.vtxo(asset.asset_id, 1, status=status) for status in VTXO_STATUSES),
        *(
            Settlement(
                id=rows.hex64(),
                strategy="merkle-commitment",
                state=state,
                period_start=rows.now - 3600,
                period_end=rows.now,
                created_at=rows.now,
                updated_at=rows.now,
            )
            for state in SETTLEMENT_STATES
        ),
    )
    with db() as session:
        assert set(session.scalars(select(CeremonySession.state))) == set(SESSION_STATES)
        assert set(session.scalars(select(Vtxo.status))) == set(VTXO_STATUSES)
        assert set(session.scalars(select(Settlement.state))) == set(SETTLEMENT_STATES)


def test_values_outside_the_documented_sets_are_refused(db, rows):
    asset = rows.asset()
    add_all(db, asset)

    with pytest.raises(IntegrityError):
        add_all(db, rows.vtxo(asset.asset_id, 1, status="lost"))

    # A legacy alias is for reading the wire; the store keeps canonical names only.
    intent = rows.intent()
    with pytest.raises(IntegrityError):
        add_all(db, intent, rows.session(intent, state="pending"))

    intent = rows.intent()
    unknown_scheme = rows.session(intent)
    unknown_scheme.scheme = "nip17"
    with pytest.raises(IntegrityError):
        add_all(db, intent, unknown_scheme)

    late = Settlement(
        id=rows.hex64(),
        strategy="merkle-commitment",
        state="done",
        period_start=rows.now - 3600,
        period_end=rows.now,
        created_at=rows.now,
        updated_at=rows.now,
    )
    with pytest.raises(IntegrityError):
        add_all(db, late)
