"""BIP 341's own test vectors against the chain's taproot checks: key-path signatures under
every hash type verify (and fail once tampered, or once their hash type byte is changed),
and control blocks commit to their output keys.

Data: the repository's one copy of the vectors (tests/bitcoin/vectors.py); the digests
themselves are pinned in tests/bitcoin/test_bip341_sighash.py.
"""

from __future__ import annotations

import pytest
from embit.script import Script
from embit.transaction import Transaction, TransactionOutput

from arkrelay_lnd.chainsim import ScriptFailure
from arkrelay_lnd.chainsim.scripts import control_block_commits, verify_input
from tests.bitcoin.vectors import SPENDS, VECTORS, spent_outputs, unsigned_tx


def _spent() -> list[TransactionOutput]:
    return [TransactionOutput(value, Script(script)) for script, value in spent_outputs()]


def _signed(case: dict, signature: bytes) -> Transaction:
    tx = Transaction.parse(unsigned_tx())
    tx.vin[case["given"]["txinIndex"]].witness.items = [signature]
    return tx


@pytest.mark.parametrize("case", SPENDS, ids=lambda c: f"input{c['given']['txinIndex']}")
def test_key_path_signatures_of_every_hash_type_verify(case: dict) -> None:
    index = case["given"]["txinIndex"]
    signature = bytes.fromhex(case["expected"]["witness"][0])
    verify_input(_signed(case, signature), index, _spent())

    tampered = bytearray(signature)
    tampered[10] ^= 1
    with pytest.raises(ScriptFailure) as caught:
        verify_input(_signed(case, bytes(tampered)), index, _spent())
    assert caught.value.error == "Invalid Schnorr signature"


@pytest.mark.parametrize("case", SPENDS, ids=lambda c: f"input{c['given']['txinIndex']}")
def test_a_signature_is_bound_to_its_hash_type(case: dict) -> None:
    index, hash_type = case["given"]["txinIndex"], case["given"]["hashType"]
    signature = bytes.fromhex(case["expected"]["witness"][0])[:64]
    other = 0x01 if hash_type != 0x01 else 0x81
    with pytest.raises(ScriptFailure) as caught:
        verify_input(_signed(case, signature + bytes([other])), index, _spent())
    assert caught.value.error == "Invalid Schnorr signature"
    with pytest.raises(ScriptFailure) as caught:
        verify_input(_signed(case, signature + b"\x04"), index, _spent())
    assert caught.value.error == "Invalid Schnorr signature hash type"


def test_single_on_an_input_without_its_output_is_a_hash_type_failure() -> None:
    tx = Transaction.parse(unsigned_tx())
    index = next(
        i
        for i, (script, _) in enumerate(spent_outputs())
        if i >= len(tx.vout) and script[:2] == b"\x51\x20"
    )
    tx.vin[index].witness.items = [b"\x01" * 64 + b"\x83"]
    with pytest.raises(ScriptFailure) as caught:
        verify_input(tx, index, _spent())
    assert caught.value.error == "Invalid Schnorr signature hash type"


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
