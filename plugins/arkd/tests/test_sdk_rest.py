"""Ark Labs' own REST providers (@arkade-os/sdk 0.4.56: RestArkProvider,
RestIndexerProvider) reading the simulator: GetInfo, GetVtxos, the commitment tx, the
VTXO chain, an arkd error, the transactions stream and a script subscription. The SDK
checks every shape it reads; what it refuses is the simulator's bug.

Skipped without node or ``npm ci --prefix plugins/arkd/tests/sdk``, unless
``ARKRELAY_REQUIRE_NODE=1``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from arkrelay_arkd import offchain
from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.sim import ArkdSimulator
from arkrelay_core.interfaces import InputSignature, TxOutputSpec
from tests.support import need_node

from .conftest import Key

pytestmark = pytest.mark.node

SDK_DIR = Path(__file__).parent / "sdk"


@pytest.fixture(autouse=True)
def _needs_node() -> None:
    need_node(SDK_DIR, ["@arkade-os/sdk", "eventsource"])


class Lines:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.seen: list[dict[str, Any]] = []
        self._buffer = b""

    async def until(self, event: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            for line in self.seen:
                if line["event"] == event:
                    return line
            chunk = await self.process.stdout.receive_some()
            assert chunk, f"node ended before {event!r}: {self.seen}"
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\n")
            self.seen += [json.loads(line) for line in complete if line]


async def test_the_sdk_rest_providers_read_the_simulator(
    sim: ArkdSimulator, nursery: trio.Nursery, backend: ArkdBackend
) -> None:
    url = await nursery.start(sim.serve_rest, 0)
    alice, bob = Key(), Key()
    boarded = sim.board(alice.pub, 21_000)
    # Bob's VTXO comes from an ark tx: the SDK reads a chain with a checkpoint in it.
    (vtxo,) = await backend.list_vtxos(alice.pub)
    built = await backend.build_offchain_tx([vtxo], [TxOutputSpec(bob.pub, 21_000)])
    signed = backend.add_signatures(built.ark_tx, _sign(alice, built.to_sign))
    submitted = await backend.submit_tx(signed, built.checkpoint_txs)
    finals = [backend.add_signatures(t.psbt, _sign(alice, [t])) for t in submitted.to_sign]
    await backend.finalize_tx(submitted.ark_txid, finals)
    ark_txid = submitted.ark_txid

    script = sim.script_of(bob.pub)
    process = await trio.lowlevel.open_process(
        ["node", str(SDK_DIR / "read_rest.mjs"), url, script],
        cwd=SDK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines = Lines(process)
    try:
        with trio.fail_after(60):
            info = (await lines.until("info"))["info"]
            assert info["signerPubkey"] == "02" + sim.ledger.signer_xonly.hex()
            assert (info["network"], info["unilateralExitDelay"], info["dust"]) == (
                "regtest",
                "512",
                "330",
            )
            [coin] = (await lines.until("vtxos"))["vtxos"]
            assert (coin["txid"], coin["vout"], coin["value"]) == (ark_txid, 0, 21_000)
            assert coin["virtualStatus"]["state"] == "preconfirmed"
            assert coin["commitmentTxIds"] == [boarded.txid]
            assert [v["txid"] for v in (await lines.until("spendable"))["vtxos"]] == [ark_txid]
            commitment = (await lines.until("commitment"))["tx"]
            assert commitment["totalOutputAmount"] == "21000"
            chain = (await lines.until("chain"))["chain"]["chain"]
            assert [(c["txid"], c["type"]) for c in chain][::2] == [
                (ark_txid, "INDEXER_CHAINED_TX_TYPE_ARK"),
                (boarded.txid, "INDEXER_CHAINED_TX_TYPE_COMMITMENT"),
            ]
            assert chain[1]["spends"] == [boarded.outpoint]
            txs = (await lines.until("virtual"))["txs"]["txs"]
            assert [offchain.decode_txid(tx) for tx in txs] == [ark_txid, chain[1]["txid"]]
            refused = (await lines.until("refused"))["error"]
            assert refused == {"type": "ArkError", "name": "INVALID_ARK_PSBT", "code": 1}

            subscribed = (await lines.until("subscribed"))["subscriptionId"]
            await lines.until("streaming")
            # Both SSE streams are open once the servicers hold them: then pay bob.
            subscription = sim.servicers["IndexerService"].subscriptions.get(subscribed)
            while not (sim.ledger._subscribers and subscription.generation):  # noqa: ASYNC110
                await trio.sleep(0.05)
            again = sim.board(bob.pub, 4_000)

            tx = (await lines.until("tx"))["commitmentTx"]
            assert tx["txid"] == again.txid
            assert [v["outpoint"]["txid"] for v in tx["spendableVtxos"]] == [again.txid]
            event = (await lines.until("subscription"))["event_"]
            assert event["scripts"] == [script]
            assert [(v["txid"], v["value"]) for v in event["newVtxos"]] == [(again.txid, 4_000)]
            await lines.until("done")
            assert await process.wait() == 0, lines.seen
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _sign(key: Key, to_sign: Any) -> list[InputSignature]:
    return [InputSignature(s.input_index, key.pub, key.sign(s.sighash)) for s in to_sign]
