"""@arkade-os/sdk's own ``EsploraProvider`` (the pinned 0.4.56, from npm) against the chain
process: it reads coins, a transaction's status, the fee rate, the tip and an address's
history, watches an address (polling: the chain serves no websocket), and broadcasts a
transaction and a 1P1C package, as an Ark wallet and unroll do.

Needs ``npm ci --prefix plugins/lnd/tests/chain``; skipped without it unless
ARKRELAY_REQUIRE_NODE=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
import trio

from arkrelay_lnd.chainsim import P2A_SCRIPT, address_of
from tests.support import need_node

from .conftest import ChainProcess
from .test_esplora import FLOOR, faucet, mine
from .txbuild import Coin, Key, build, sign_keypath

pytestmark = pytest.mark.node

HERE = Path(__file__).resolve().parent
ALICE, BOB = Key(21), Key(22)


@pytest.fixture(autouse=True)
def _needs_node() -> None:
    need_node(HERE, ["@arkade-os/sdk"])


async def test_the_sdk_esplora_provider_reads_and_broadcasts(
    chain_process: ChainProcess, esplora: httpx.AsyncClient
) -> None:
    with trio.fail_after(90):
        coin = await faucet(esplora, ALICE.p2tr, 80_000)
        height = await mine(esplora)
        spend = build([coin], [(79_000, BOB.p2tr)])
        sign_keypath(spend, [coin], 0, ALICE)
        conflict = build([coin], [(78_000, ALICE.p2tr)])
        sign_keypath(conflict, [coin], 0, ALICE)

        anchored = await faucet(esplora, ALICE.p2tr, 30_000)
        fuel = await faucet(esplora, BOB.p2tr, 30_000)
        parent = build([anchored], [(30_000, BOB.p2tr), (0, P2A_SCRIPT)], version=3)
        sign_keypath(parent, [anchored], 0, ALICE)
        anchor = Coin(parent.txid().hex(), 1, 0, P2A_SCRIPT)
        child = build([anchor, fuel], [(28_000, BOB.p2tr)], version=3)
        sign_keypath(child, [anchor, fuel], 1, BOB)
        tip = int((await esplora.get("/blocks/tip/height")).text)

        job = {
            "url": chain_process.url,
            "address": address_of(ALICE.p2tr),
            "fundingTxid": coin.txid,
            "spend": spend.serialize().hex(),
            "conflict": conflict.serialize().hex(),
            "watch": address_of(BOB.p2tr),
            "pkg": [parent.serialize().hex(), child.serialize().hex()],
        }
        done = await trio.run_process(
            ["node", str(HERE / "provider.mjs"), json.dumps(job)],
            cwd=HERE,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
    assert done.returncode == 0, done.stderr.decode()
    seen = json.loads(done.stdout.decode().strip().splitlines()[-1])

    by_txid = {c["txid"]: c for c in seen["coins"]}
    assert by_txid[coin.txid]["value"] == 80_000
    assert by_txid[coin.txid]["status"]["confirmed"] is True
    assert seen["fundingStatus"]["confirmed"] is True
    assert seen["fundingStatus"]["blockHeight"] == height - 1
    assert seen["feeRate"] == FLOOR
    assert seen["tip"]["height"] == tip
    assert seen["tip"]["hash"] == (await esplora.get("/blocks/tip/hash")).text
    assert coin.txid in seen["history"]

    assert seen["broadcast"] == spend.txid().hex()
    assert seen["watched"] == [spend.txid().hex()]
    assert seen["spendStatus"] == {"confirmed": False}
    assert seen["outspends"] == [
        {"spent": True, "txid": spend.txid().hex(), "vin": 0, "status": {"confirmed": False}}
    ]
    assert seen["refused"] == {
        "error": 'Failed to broadcast transaction: sendrawtransaction RPC error: {"code":-26,'
        '"message":"txn-mempool-conflict"}'
    }
    assert seen["pkg"] == {
        "msg": "success",
        "txids": [parent.txid().hex(), child.txid().hex()],
    }
    pool = set((await esplora.get("/mempool/txids")).json())
    assert pool == {spend.txid().hex(), parent.txid().hex(), child.txid().hex()}
