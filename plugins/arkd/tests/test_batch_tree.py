"""The commitment tx and its trees, checked as arkd and @arkade-os/sdk check them.

Intents from arkd's own tx-builder fixtures (arkade-os/arkd v0.9.15, commit f444de6c,
internal/infrastructure/tx-builder/covenantless/testdata/fixtures.json ->
data/arkd-v0.9.15/txbuilder_commitment_fixtures.json): one tree leaf per intent, as
arkd's TestBuildCommitmentTx asserts; and every tree passes the rules of the SDK's
tree/validation.ts and tree/txTree.ts (``validateVtxoTxGraph``, ``TxTree.validate``,
``validateConnectorsTxGraph``) and arkd's radix-2/radix-4 shapes (tree/builder.go).
"""

from __future__ import annotations

import json
from pathlib import Path

import coincurve
import pytest

from arkrelay_arkd import musig2
from arkrelay_arkd.sim.commitment import build_batch
from arkrelay_arkd.sim.intents import Intent, Receiver
from arkrelay_arkd.sim.txtree import (
    CONNECTOR_RADIX,
    VTXO_RADIX,
    Leaf,
    TreeTx,
    build_tree,
    cosigners_of,
    sweep_root,
)
from arkrelay_arkd.sim.wallet import ServerWallet
from arkrelay_arkd.tapscript import ANCHOR_SCRIPT

from .fakechain import FakeChain

FIXTURES = Path(__file__).parent / "data" / "arkd-v0.9.15" / "txbuilder_commitment_fixtures.json"
EXPIRY = 604672
FORFEIT = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
ROOT = sweep_root(FORFEIT, EXPIRY)


def _key(n: int) -> bytes:
    return coincurve.PrivateKey((n + 1).to_bytes(32, "big")).public_key.format()


SERVER = _key(1000)


def _intents(fixture: dict) -> list[Intent]:
    return [
        Intent(
            id=str(i),
            proof_txid="",
            proof="",
            message="",
            boarding=[],
            vtxos=[],
            receivers=[
                Receiver(b"\x51\x20" + bytes.fromhex(r["pubkey"]), r["amount"], False)
                for r in intent["receivers"]
            ],
            cosigners=[_key(i)],
        )
        for i, intent in enumerate(fixture["intents"])
    ]


def _check_tree(tree: TreeTx, parent_out: tuple[bytes, int], root: bytes | None) -> None:
    """The SDK's validateVtxoTxGraph / TxTree.validate rules, node by node."""
    tx = tree.psbt.tx
    assert len(tx.vin) == 1
    assert tx.vout[-1].script_pubkey.data == ANCHOR_SCRIPT and tx.vout[-1].value == 0
    assert sum(o.value for o in tx.vout) == parent_out[1]
    keys = cosigners_of(tree.psbt)
    assert keys, "missing cosigners public keys"
    if len(keys) > 1:
        _, output_key = musig2.aggregate_tree_key(keys, root)
    else:
        output_key = keys[0][1:]
    assert parent_out[0] == b"\x51\x20" + output_key
    assert len(tree.children) <= len(tx.vout) - 1
    for index, child in tree.children.items():
        assert child.psbt.inputs[0].txid.hex() == tree.txid
        assert child.psbt.inputs[0].vout == index
        out = tx.vout[index]
        _check_tree(child, (out.script_pubkey.data, out.value), root)


@pytest.mark.parametrize(
    "fixture", json.loads(FIXTURES.read_text())["buildCommitmentTx"]["valid"], ids=str
)
def test_arkds_commitment_fixtures_give_one_leaf_per_intent_and_valid_trees(fixture) -> None:
    chain = FakeChain()
    wallet = ServerWallet(b"\x07" * 32, chain, "regtest")
    wallet.fund(1_000_000)
    intents = _intents(fixture)

    txs = build_batch(
        intents,
        signer_key=SERVER,
        sweep_root=ROOT,
        vtxo_tree_expiry=EXPIRY,
        connectors=len(fixture["intents"]),
        wallet=wallet,
        dust=330,
        fee_rate=1.0,
    )

    assert txs.vtxo_tree is not None and txs.connector_tree is not None
    leaves = txs.vtxo_tree.leaves()
    assert len(leaves) == fixture["expectedNumOfLeaves"]
    paid = sorted(
        (o.script_pubkey.data, o.value) for leaf in leaves for o in leaf.psbt.tx.vout[:-1]
    )
    assert paid == sorted((r.script, r.amount) for i in intents for r in i.receivers)
    commitment = txs.commitment.tx
    assert txs.vtxo_tree.psbt.inputs[0].txid == commitment.txid()
    assert txs.vtxo_tree.psbt.inputs[0].vout == 0
    batch = commitment.vout[0]
    _check_tree(txs.vtxo_tree, (batch.script_pubkey.data, batch.value), ROOT)
    connector = commitment.vout[1]
    assert txs.connector_tree.psbt.inputs[0].vout == 1
    _check_tree(txs.connector_tree, (connector.script_pubkey.data, connector.value), None)
    assert len(txs.connector_tree.leaves()) == len(fixture["intents"])
    for node in txs.vtxo_tree.walk():
        assert node.psbt.inputs[0].sighash_type == 0
        assert SERVER in cosigners_of(node.psbt)


def _shape(tree: TreeTx) -> object:
    if not tree.children:
        return "leaf"
    return [_shape(tree.children[i]) for i in sorted(tree.children)]


@pytest.mark.parametrize(
    ("leaves", "radix", "shape"),
    [
        (1, VTXO_RADIX, "leaf"),
        (2, VTXO_RADIX, ["leaf", "leaf"]),
        # A leftover that does not fill a group is carried up to the next level.
        (3, VTXO_RADIX, [["leaf", "leaf"], "leaf"]),
        (5, VTXO_RADIX, [[["leaf", "leaf"], ["leaf", "leaf"]], "leaf"]),
        (3, CONNECTOR_RADIX, ["leaf", "leaf", "leaf"]),
        (6, CONNECTOR_RADIX, [["leaf", "leaf", "leaf", "leaf"], "leaf", "leaf"]),
    ],
)
def test_trees_group_as_arkds_builder(leaves: int, radix: int, shape: object) -> None:
    made = [Leaf(((b"\x51\x20" + bytes(32), 1000),), (_key(n), SERVER)) for n in range(leaves)]
    tree = build_tree(made, ROOT, radix, ("00" * 32, 0), EXPIRY)
    assert _shape(tree) == shape
