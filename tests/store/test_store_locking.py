"""Row claiming with FOR UPDATE SKIP LOCKED, the basis of session leases across instances."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from arkrelay_core.store import create_engine_for, session_factory, upgrade
from arkrelay_core.store.models import CeremonySession


def claim_query(limit: int = 1):
    return (
        select(CeremonySession)
        .where(CeremonySession.state == "intent_received")
        .order_by(CeremonySession.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def store_sessions(db, rows, count: int) -> list[str]:
    intents = [rows.intent() for _ in range(count)]
    sessions = [rows.session(intent) for intent in intents]
    with db() as session, session.begin():
        session.add_all(intents + sessions)
    return sorted(s.id for s in sessions)


@pytest.mark.postgres
def test_second_claimer_skips_the_row_the_first_holds(postgres_url, rows):
    upgrade(postgres_url)
    engine = create_engine_for(postgres_url)
    db = session_factory(engine)
    try:
        first_id, second_id = store_sessions(db, rows, 2)

        with db() as first, first.begin(), db() as second, second.begin():
            held = first.scalars(claim_query()).all()
            assert [s.id for s in held] == [first_id]

            skipped_to = second.scalars(claim_query(limit=2)).all()
            assert [s.id for s in skipped_to] == [second_id]

        # Once the first transaction ends, its row can be claimed again.
        with db() as third, third.begin():
            assert [s.id for s in third.scalars(claim_query(limit=2))] == [first_id, second_id]
    finally:
        engine.dispose()


def test_claim_query_runs_on_both_databases(db, rows):
    # SQLite has no row locks and drops the clause; repositories can use one query everywhere.
    ids = store_sessions(db, rows, 3)
    with db() as session, session.begin():
        assert [s.id for s in session.scalars(claim_query(limit=5))] == ids
