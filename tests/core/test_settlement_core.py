"""The core's side of settlement on SQLite and PostgreSQL: rows that only move forward, a
31342 queued with its state change, and leadership through a real advisory lock."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
import trio

from arkrelay_core.ceremony.db import Store
from arkrelay_core.identity import open_identity
from arkrelay_core.nostr import decode_event, first_tag_value, verify_event
from arkrelay_core.settlement.host import GatewaySettlementHost
from arkrelay_core.settlement.leader import Leadership
from arkrelay_core.settlement.merkle import merkle_root
from arkrelay_core.settlement.rows import SettlementConflict
from arkrelay_core.store import create_engine_for, session_factory, upgrade
from arkrelay_core.store.models import L2Transaction, OutboxEvent

TX = [f"{i:064x}" for i in range(1, 6)]


@pytest.fixture
async def host(db_url, tmp_path):
    await trio.to_thread.run_sync(upgrade, db_url)
    engine = create_engine_for(db_url)
    sessions = session_factory(engine)
    with sessions() as db, db.begin():
        db.add_all(L2Transaction(ark_txid=t, finalized_at=100 + i) for i, t in enumerate(TX))
    identity = open_identity(tmp_path / "gw.key", "regtest", environ={})
    notified = []
    host = GatewaySettlementHost(
        Store(sessions, trio.CapacityLimiter(2)),
        identity,
        ark=None,
        lightning=None,
        notify_outbox=lambda: notified.append(1),
        clock=lambda: 1_000,
    )
    host.sessions, host.identity, host.notified = sessions, identity, notified
    yield host
    engine.dispose()


async def test_periods_take_what_no_settlement_holds(host) -> None:
    assert [t for t, _ in await host.uncommitted_l2_txs(103)] == TX[:3]
    opened = await host.open_settlement(
        "anchor-103", strategy="anchor", period_start=0, period_end=103, ark_txids=TX[:3]
    )
    assert opened.state == "collecting" and opened.l2_tx_count == 3
    assert opened.merkle_root == merkle_root(TX[:3])
    # Opening again returns the row as it is; the leaves are not taken twice.
    again = await host.open_settlement(
        "anchor-103", strategy="anchor", period_start=0, period_end=103, ark_txids=TX
    )
    assert again == opened
    assert [t for t, _ in await host.uncommitted_l2_txs(200)] == TX[3:]
    assert await host.known_l2_txids([TX[0], TX[4], "ff" * 32]) == [TX[4]]
    assert await host.last_period_end("anchor") == 103
    assert await host.last_period_end("ark-batches") is None
    with pytest.raises(SettlementConflict, match="no L2 transactions"):
        await host.open_settlement(
            "anchor-104", strategy="anchor", period_start=103, period_end=104, ark_txids=[]
        )


async def test_a_settlement_moves_forward_and_publishes_once(host) -> None:
    await host.open_settlement(
        "s1", strategy="anchor", period_start=0, period_end=103, ark_txids=TX[:2]
    )
    with pytest.raises(SettlementConflict, match="only a confirmed one"):
        await host.publish("s1")
    await host.advance("s1", "committed", note="broadcast", l1_txid="aa" * 32)
    await host.advance("s1", "committed", context={"bumps": 1})
    with pytest.raises(SettlementConflict, match="cannot go back"):
        await host.advance("s1", "collecting")
    with pytest.raises(SettlementConflict, match="with its 31342"):
        await host.advance("s1", "published")
    await host.advance("s1", "confirmed", confirmations=3, block_height=812)
    record = await host.publish("s1")
    assert record.state == "published" and host.notified == [1]
    assert [h["state"] for h in record.history] == [
        "collecting",
        "committed",
        "confirmed",
        "published",
    ]
    assert record.context == {"bumps": 1}
    with pytest.raises(SettlementConflict, match="already published"):
        await host.advance("s1", "failed")
    with pytest.raises(SettlementConflict, match="is published"):
        await host.publish("s1")
    assert await host.unfinished("anchor") == []

    with host.sessions() as db:
        [row] = db.scalars(sa.select(OutboxEvent)).all()
        event = decode_event(json.dumps(row.event))
    assert verify_event(event) and event.pubkey == host.identity.pubkey
    assert event.kind == 31342 and first_tag_value(event, "d") == "l1:s1"
    assert json.loads(event.content) == {
        "l1_txid": "aa" * 32,
        "block_height": 812,
        "merkle_root_of_l2_txs": merkle_root(TX[:2]),
        "l2_tx_count": 2,
        "period_start": 0,
        "period_end": 103,
    }


@pytest.mark.postgres
async def test_one_leader_at_a_time_and_takeover(postgres_url) -> None:
    engines = [create_engine_for(postgres_url) for _ in range(2)]
    first, second = (Leadership(e, poll_seconds=0.1, call_timeout=5) for e in engines)
    try:
        await first.acquire()
        with trio.move_on_after(0.6) as waited:
            await second.acquire()
        assert waited.cancelled_caught and not second.is_leader

        # The holder's connection dies (as with a killed process): it notices, and the
        # follower takes over.
        pid = first._connection.execute(sa.text("select pg_backend_pid()")).scalar()
        first._connection.commit()
        with engines[1].connect() as admin:
            admin.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})
        with trio.fail_after(10):
            await first.watch()
        await first.release()
        with trio.fail_after(10):
            await second.acquire()
        assert second.is_leader and second.acquisitions == 1

        # Releasing hands it back.
        await second.release()
        with trio.fail_after(10):
            await first.acquire()
        assert first.acquisitions == 2
        await first.release()
    finally:
        for engine in engines:
            engine.dispose()


async def test_sqlite_is_its_own_leader(sqlite_url) -> None:
    engine = create_engine_for(sqlite_url)
    leadership = Leadership(engine)
    await leadership.acquire()
    assert leadership.is_leader and not leadership.shared
    with trio.move_on_after(0.2) as waited:
        await leadership.watch()
    assert waited.cancelled_caught
    engine.dispose()
