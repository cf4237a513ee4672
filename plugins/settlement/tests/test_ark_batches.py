"""The ark-batches strategy: the Ark server's commitment txs announced as 31342s."""

from __future__ import annotations

import json
from pathlib import Path

from arkrelay_core.nostr import first_tag_value, verify_event
from arkrelay_core.settlement.merkle import build_proof, merkle_root, root_from_proof

from .support import fetch_commitments, leaves, settlement_gateway, settlements, wait_for
from .test_anchor import _transfers

ARK_BATCHES = '\n[settlement]\nplugin = "ark-batches"\n'


async def test_each_commitment_of_ours_is_announced(tmp_path: Path, relay) -> None:
    async with settlement_gateway(tmp_path / "gw", relay.url, ARK_BATCHES) as gateway:
        simulator = gateway.components.backends["ark"].simulator
        txids = await _transfers(gateway, relay.url, 2)
        commitment = simulator.mine_batch()
        assert commitment is not None

        rows = await wait_for(lambda: settlements(gateway), what="a settlement")
        row = await wait_for(
            lambda: _published(gateway, commitment), what="the settlement published"
        )
        assert [r.id for r in rows] == [commitment]
        assert row.l1_txid == commitment
        assert sorted(await leaves(gateway, row.id)) == sorted(txids)
        assert row.merkle_root == merkle_root(txids)
        assert [h["state"] for h in row.history] == [
            "collecting",
            "committed",
            "confirmed",
            "published",
        ]

        [event] = await wait_for(
            lambda: fetch_commitments(relay.url, gateway.identity.pubkey), what="the 31342"
        )
        assert verify_event(event)
        assert first_tag_value(event, "d") == f"l1:{commitment}"
        content = json.loads(event.content)
        assert content["l1_txid"] == commitment
        assert content["l2_tx_count"] == 2
        for txid in txids:
            proof = build_proof(await leaves(gateway, row.id), txid)
            assert root_from_proof(txid, proof.path) == content["merkle_root_of_l2_txs"]

        # Boarding alice was a commitment too, settling nothing of ours: seen, not announced.
        assert gateway.components.settlement.statistics()["commitments_seen"] == 2
        more = await _transfers(gateway, relay.url, 1)
        second = simulator.mine_batch()
        row2 = await wait_for(lambda: _published(gateway, second), what="the second one")
        # The first transfers' VTXOs were settled already; only the new tx is committed.
        assert await leaves(gateway, row2.id) == more
        assert len(await settlements(gateway)) == 2


async def _published(gateway, settlement_id):
    for row in await settlements(gateway):
        if row.id == settlement_id and row.state == "published":
            return row
    return None
