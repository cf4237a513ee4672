"""The arkd plugin's taproot sighashes, client and simulator, against BIP 341's vectors
for every hash type, and what becomes of a signature over embit's digest.

Every script-path digest of the plugin goes through ``arktx.leaf_sighash`` and so through
``arkrelay_core.bitcoin``; these tests drive it from a PSBT as the plugin holds one, so
the plumbing (the unsigned tx, the witness utxos as prevouts, the leaf) is checked too.
The expected tapscript messages are derived from the vectors' published key-path
messages (tests/bitcoin/vectors.py). embit 0.8 gets SIGHASH_SINGLE and ANYONECANPAY
wrong; a signature over its digest must be worth nothing here.
"""

from __future__ import annotations

import pytest
from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import Transaction, TransactionOutput

from arkrelay_arkd import arktx, intentproof
from arkrelay_arkd.tapscript import LEAF_VERSION
from arkrelay_core.bitcoin import tagged_hash
from arkrelay_core.nostr import bip340
from tests.bitcoin.vectors import SPENDS, spent_outputs, tapscript_sig_message, unsigned_tx

OWNER = bip340.generate_secret_key()
SERVER = bip340.generate_secret_key()
#: A 2-of-2 collaborative closure, as a VTXO's: <owner> CHECKSIGVERIFY <server> CHECKSIG.
LEAF = (
    b"\x20" + bip340.xonly_public_key(OWNER) + b"\xad"
    b"\x20" + bip340.xonly_public_key(SERVER) + b"\xac"
)
CONTROL = b"\xc0" + b"\x50" * 32  # spend_leaf reads it; the sighash does not
#: The hash types embit 0.8 hashes wrongly.
EMBIT_WRONG = [c for c in SPENDS if c["given"]["hashType"] in (0x03, 0x81, 0x82, 0x83)]


def _ids(case: dict) -> str:
    return f"input{case['given']['txinIndex']}-type{case['given']['hashType']:#04x}"


def _psbt() -> PSBT:
    # ProofPSBT keeps a sequence of 0 (several vector inputs have one); embit's PSBT does not.
    psbt = intentproof.ProofPSBT(Transaction.parse(unsigned_tx()))
    for inp, (script, amount) in zip(psbt.inputs, spent_outputs(), strict=True):
        inp.witness_utxo = TransactionOutput(amount, Script(script))
    return psbt


def _with_leaf(psbt: PSBT, index: int) -> PSBT:
    psbt.inputs[index].taproot_scripts = {CONTROL: LEAF + bytes([LEAF_VERSION])}
    return psbt


def _embit_digest(psbt: PSBT, index: int, hash_type: int) -> bytes:
    return psbt.tx.sighash_taproot(
        index,
        script_pubkeys=[i.witness_utxo.script_pubkey for i in psbt.inputs],
        values=[i.witness_utxo.value for i in psbt.inputs],
        sighash=hash_type,
        ext_flag=1,
        script=Script(LEAF),
        leaf_version=LEAF_VERSION,
    )


@pytest.mark.parametrize("case", SPENDS, ids=_ids)
def test_ark_and_proof_sighashes_are_bip341s_for_every_hash_type(case: dict) -> None:
    index, hash_type = case["given"]["txinIndex"], case["given"]["hashType"]
    expected = tagged_hash("TapSighash", tapscript_sig_message(case, LEAF))
    psbt = _with_leaf(_psbt(), index)
    assert arktx.tapscript_sighash(psbt, index, hash_type) == expected
    spent = arktx.witness_prevouts(psbt)
    assert intentproof.tapscript_sighash(psbt, index, spent, LEAF, hash_type) == expected


@pytest.mark.parametrize("case", EMBIT_WRONG, ids=_ids)
def test_a_signature_over_embits_digest_is_not_valid(case: dict) -> None:
    index, hash_type = case["given"]["txinIndex"], case["given"]["hashType"]
    psbt = _with_leaf(_psbt(), index)
    wrong = _embit_digest(psbt, index, hash_type)
    assert wrong != arktx.tapscript_sighash(psbt, index, hash_type)  # embit's error persists
    owner = bip340.xonly_public_key(OWNER)
    arktx.add_signature(psbt, index, owner, bip340.schnorr_sign(OWNER, wrong) + bytes([hash_type]))
    assert arktx.verify_input_signatures(psbt, index) == {owner: False}

    arktx.sign_input(psbt, index, OWNER, hash_type)
    assert arktx.verify_input_signatures(psbt, index) == {owner: True}
    (signature,) = psbt.inputs[index].taproot_sigs.values()
    assert signature[64] == hash_type


def test_a_signature_is_valid_only_under_the_type_it_declares() -> None:
    psbt = _with_leaf(_psbt(), 1)
    owner = bip340.xonly_public_key(OWNER)
    signature = arktx.sign_input(psbt, 1, OWNER, 0x83)
    for declared in (0x00, 0x01, 0x03, 0x81):
        body = signature[:64] + (bytes([declared]) if declared else b"")
        arktx.add_signature(psbt, 1, owner, body)
        assert arktx.verify_input_signatures(psbt, 1) == {owner: False}


@pytest.mark.parametrize("hash_type", [0x04, 0x20, 0x80, 0x84])
def test_hash_types_without_a_digest_carry_btcds_text(hash_type: int) -> None:
    psbt = _with_leaf(_psbt(), 1)
    with pytest.raises(arktx.SighashRefused) as caught:
        arktx.tapscript_sighash(psbt, 1, hash_type)
    assert str(caught.value) == f"invalid taproot sighash type: {hash_type}"
    owner = bip340.xonly_public_key(OWNER)
    arktx.add_signature(psbt, 1, owner, b"\x01" * 64 + bytes([hash_type]))
    assert arktx.verify_input_signatures(psbt, 1) == {owner: False}


def test_single_without_its_output_carries_btcds_text() -> None:
    psbt = _psbt()
    index = len(psbt.tx.vout)
    _with_leaf(psbt, index)
    with pytest.raises(arktx.SighashRefused, match=r"^invalid sighash type for input$"):
        arktx.tapscript_sighash(psbt, index, 0x83)
    arktx.tapscript_sighash(psbt, index, 0x81)  # ANYONECANPAY alone is fine there
