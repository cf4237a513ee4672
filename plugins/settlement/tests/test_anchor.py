"""The anchor strategy end to end: real transfers through a real relay, the arkd and lnd
simulators over gRPC, the 31342 read back from the relay and checked against its proofs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import trio

from arkrelay_core.nostr import first_tag_value, verify_event
from arkrelay_core.protocol import Kind
from arkrelay_core.settlement.merkle import (
    build_proof,
    commitment_payload,
    merkle_root,
    root_from_proof,
)
from tests.ceremony.harness import board
from tests.ceremony.outcomes import transfer_params
from tests.ceremony.wallet import ScriptedWallet

from .support import (
    anchor_section,
    fetch_commitments,
    leaves,
    settlement_gateway,
    settlements,
    wait_for,
)


async def _transfers(
    gateway, relay_url: str, count: int, *, period: float | None = None
) -> list[str]:
    """Run ``count`` transfers; the ark txids of their 31340s. With ``period``, they start
    just after a period boundary, so a slow machine cannot split them over two periods."""
    gw = gateway.identity.pubkey
    txids = []
    async with ScriptedWallet(relay_url, gw) as alice:
        await board(gateway, alice.pubkey, 50_000)
        if period is not None:
            await trio.sleep_until(trio.current_time() + period - time.time() % period + 0.05)
        for _ in range(count):
            outcome = await alice.run_ceremony(
                alice.intent("ark:transfer", transfer_params("ab" * 32))
            )
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            txids.append(outcome.content["ark_txid"])
    return txids


def _network(gateway):
    return gateway.components.backends["lightning"].simulator.network


async def _mine_until_published(gateway, settlement_id: str) -> None:
    async def published() -> bool:
        rows = {r.id: r for r in await settlements(gateway)}
        row = rows.get(settlement_id)
        if row is not None and row.state == "published":
            return True
        if row is not None and row.l1_txid is not None:
            _network(gateway).mine(1)
        return False

    await wait_for(published, every=0.3, within=40)


async def test_a_period_is_committed_once_and_its_31342_verifies(tmp_path: Path, relay) -> None:
    section = anchor_section(every='"4s"')
    async with settlement_gateway(tmp_path / "gw", relay.url, section) as gateway:
        txids = await _transfers(gateway, relay.url, 2, period=4)
        first = await wait_for(lambda: settlements(gateway), what="a settlement row")
        await _mine_until_published(gateway, first[0].id)

        rows = await settlements(gateway)
        assert len(rows) == 1, [r.id for r in rows]
        row = rows[0]
        assert row.l2_tx_count == 2
        assert sorted(await leaves(gateway, row.id)) == sorted(txids)
        assert row.merkle_root == merkle_root(txids)
        assert [h["state"] for h in row.history] == [
            "collecting",
            "committed",
            "confirming",
            "confirmed",
            "published",
        ]
        assert row.confirmations >= 2 and row.block_height

        # The commitment is in the wallet exactly once, carrying exactly this root.
        lightning = gateway.components.backends["lightning"]
        found = await lightning.find_op_return(commitment_payload(row.merkle_root))
        assert found is not None and found.txid == row.l1_txid

        # The 31342 reaches the relay, signed by the gateway, and every proof folds to it.
        events = await wait_for(
            lambda: fetch_commitments(relay.url, gateway.identity.pubkey), within=15
        )
        assert len(events) == 1
        event = events[0]
        assert verify_event(event)
        assert first_tag_value(event, "d") == f"l1:{row.id}"
        content = json.loads(event.content)
        assert content == {
            "l1_txid": row.l1_txid,
            "block_height": row.block_height,
            "merkle_root_of_l2_txs": row.merkle_root,
            "l2_tx_count": 2,
            "period_start": row.period_start,
            "period_end": row.period_end,
        }
        for txid in txids:
            proof = build_proof(await leaves(gateway, row.id), txid)
            assert root_from_proof(txid, proof.path) == content["merkle_root_of_l2_txs"]

        # Periods with nothing in them commit nothing.
        await trio.sleep(4.5)
        assert [r.id for r in await settlements(gateway)] == [row.id]

        # A later period holds only what was finalized after the first one.
        more = await _transfers(gateway, relay.url, 1)
        second = await wait_for(
            lambda: _later(gateway, row.id), what="a second settlement", within=20
        )
        assert await leaves(gateway, second.id) == more
        assert second.period_start == row.period_end
        await _mine_until_published(gateway, second.id)


async def _later(gateway, after: str):
    rows = [r for r in await settlements(gateway) if r.id != after]
    return rows[0] if rows else None


async def test_lnd_offline_queues_the_period_then_settles_it(tmp_path: Path, relay) -> None:
    async with settlement_gateway(tmp_path / "gw", relay.url, anchor_section()) as gateway:
        simulator = gateway.components.backends["lightning"].simulator
        strategy = gateway.components.settlement
        simulator.stop("gateway")
        txids = await _transfers(gateway, relay.url, 1)

        async def queued():
            rows = await settlements(gateway)
            return rows and rows[0].context.get("last_error") and rows[0]

        row = await wait_for(queued, what="a queued settlement")
        assert row.state == "collecting" and row.l1_txid is None
        assert strategy.statistics()["commit_failures"] >= 1
        assert strategy.statistics()["queued"] == 1

        simulator.start("gateway")
        await _mine_until_published(gateway, row.id)
        rows = await settlements(gateway)
        assert len(rows) == 1 and rows[0].state == "published"
        assert await leaves(gateway, row.id) == txids
        assert strategy.statistics()["queued"] == 0


async def test_a_commitment_already_in_the_wallet_is_adopted_not_sent_again(
    tmp_path: Path, relay
) -> None:
    """A leader that died between broadcasting and recording it: the next run finds the
    OP_RETURN in the wallet and records that transaction instead of paying for another."""
    async with settlement_gateway(
        tmp_path / "gw", relay.url, anchor_section(every='"1h"')
    ) as gateway:
        txids = await _transfers(gateway, relay.url, 2)
        lightning = gateway.components.backends["lightning"]
        earlier = await lightning.send_op_return(
            commitment_payload(merkle_root(txids)), sat_per_vbyte=2
        )
        settlement_id = await gateway.components.settlement.settle_now()
        assert settlement_id is not None
        await _mine_until_published(gateway, settlement_id)
        row = (await settlements(gateway))[0]
        assert row.l1_txid == earlier.txid
        assert "adopted" in row.history[1]["note"]


async def test_a_stuck_commitment_is_fee_bumped_until_it_confirms(tmp_path: Path, relay) -> None:
    section = anchor_section(bump_after='"0.5s"', max_sat_per_vbyte="8")
    async with settlement_gateway(tmp_path / "gw", relay.url, section) as gateway:
        chain = _network(gateway).chain
        strategy = gateway.components.settlement
        # The simulated mempool mines nothing paying under 20 sat/vB: above the cap.
        chain.fee_floor = 20
        await _transfers(gateway, relay.url, 1)
        row = await wait_for(lambda: _committed(gateway), what="a broadcast commitment")

        async def capped() -> bool:
            _network(gateway).mine(1)
            return strategy.statistics()["rebroadcasts"] >= 1

        await wait_for(capped, every=0.3, what="bumps up to the cap, then a rebroadcast")
        [stuck] = await settlements(gateway)
        assert stuck.state == "committed" and stuck.confirmations == 0
        notes = [h["note"] for h in stuck.history]
        assert notes[2:5] == [
            "fee bumped 2 -> 4 sat/vB",
            "fee bumped 4 -> 8 sat/vB",
            "rebroadcast at the 8 sat/vB cap",
        ], notes
        assert strategy.statistics()["fee_bumps"] == 2

        # Fees come down below what the bumped package pays: it confirms, once.
        chain.fee_floor = 5
        await _mine_until_published(gateway, row.id)
        [done] = await settlements(gateway)
        assert done.l1_txid == row.l1_txid  # CPFP: the commitment's txid never changed
        assert done.state == "published"


async def _committed(gateway):
    for row in await settlements(gateway):
        if row.state == "committed":
            return row
    return None
