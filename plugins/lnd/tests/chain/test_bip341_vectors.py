"""BIP 341's own test vectors against the chain's taproot checks: key-path signatures under
every hash type verify (and fail once tampered), and control blocks commit to their
output keys.

Data: ``data/bip341-wallet-test-vectors.json`` is ``bip-0341/wallet-test-vectors.json``
from bitcoin/bips at commit 7fe0b034ec967b52a5a28276419117326df93263, unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from embit.script import Script
from embit.transaction import Transaction, TransactionOutput

from arkrelay_lnd.chainsim import ScriptFailure
from arkrelay_lnd.chainsim.scripts import control_block_commits, verify_input
from arkrelay_lnd.chainsim.sighash import taproot_sighash

VECTORS = json.loads(
    (Path(__file__).parent / "data" / "bip341-wallet-test-vectors.json").read_text()
)
KEY_PATH = VECTORS["keyPathSpending"][0]
SPENDS = KEY_PATH["inputSpending"]


def _spent() -> list[TransactionOutput]:
    return [
        TransactionOutput(u["amountSats"], Script(bytes.fromhex(u["scriptPubKey"])))
        for u in KEY_PATH["given"]["utxosSpent"]
    ]


@pytest.mark.parametrize("case", SPENDS, ids=lambda c: f"input{c['given']['txinIndex']}")
def test_key_path_signatures_of_every_hash_type_verify(case: dict) -> None:
    tx = Transaction.parse(bytes.fromhex(KEY_PATH["given"]["rawUnsignedTx"]))
    index = case["given"]["txinIndex"]
    spent = _spent()
    digest = taproot_sighash(tx, index, spent, case["given"]["hashType"])
    assert digest.hex() == case["intermediary"]["sigHash"]
    tx.vin[index].witness.items = [bytes.fromhex(w) for w in case["expected"]["witness"]]
    verify_input(tx, index, spent)

    sig = bytearray(tx.vin[index].witness.items[0])
    sig[10] ^= 1
    tx.vin[index].witness.items = [bytes(sig)]
    with pytest.raises(ScriptFailure) as caught:
        verify_input(tx, index, spent)
    assert caught.value.error == "Invalid Schnorr signature"


def _leaves(tree: object) -> list[dict]:
    if tree is None:
        return []
    if isinstance(tree, dict):
        return [tree]
    return [leaf for branch in tree for leaf in _leaves(branch)]  # type: ignore[union-attr]


CONTROL_CASES = [
    (case["expected"]["scriptPubKey"], leaf["script"], control)
    for case in VECTORS["scriptPubKey"]
    for leaf, control in zip(
        _leaves(case["given"]["scriptTree"]),
        case["expected"].get("scriptPathControlBlocks", []),
        strict=False,
    )
]


@pytest.mark.parametrize("output, script, control", CONTROL_CASES)
def test_control_blocks_commit_to_their_outputs(output: str, script: str, control: str) -> None:
    key = bytes.fromhex(output)[2:]
    assert control_block_commits(key, bytes.fromhex(script), bytes.fromhex(control))
    flipped = bytearray(bytes.fromhex(control))
    flipped[0] ^= 1  # the other parity
    assert not control_block_commits(key, bytes.fromhex(script), bytes(flipped))
    assert not control_block_commits(key, bytes.fromhex(script) + b"\x51", bytes.fromhex(control))


@pytest.mark.parametrize("hash_type", [0x00, 0x01, 0x02])
def test_tapscript_digests_agree_with_embit_where_embit_follows_bip341(hash_type: int) -> None:
    """BIP 341 has no tapscript digest vectors; for the types embit gets right (no SINGLE,
    no ANYONECANPAY) the leaf extension must give embit's digest."""
    tx = Transaction.parse(bytes.fromhex(KEY_PATH["given"]["rawUnsignedTx"]))
    spent = _spent()
    leaf = bytes.fromhex("20" + "11" * 32 + "ac")
    ours = taproot_sighash(tx, 2, spent, hash_type, leaf=leaf)
    theirs = tx.sighash_taproot(
        2,
        [o.script_pubkey for o in spent],
        [o.value for o in spent],
        sighash=hash_type,
        ext_flag=1,
        script=Script(leaf),
    )
    assert ours == theirs
    assert ours != taproot_sighash(tx, 2, spent, hash_type)
