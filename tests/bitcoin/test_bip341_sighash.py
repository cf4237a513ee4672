"""``arkrelay_core.bitcoin``'s BIP 341 sighash against BIP 341's own test vectors, every
hash type, key path and tapscript, and the digests BIP 341 refuses to define."""

from __future__ import annotations

import pytest

from arkrelay_core.bitcoin import (
    TAPROOT_SIGHASH_TYPES,
    InvalidHashType,
    SighashError,
    SingleWithoutOutput,
    tagged_hash,
    taproot_sig_message,
    taproot_sighash,
)
from arkrelay_core.bitcoin._wire import read_tx
from arkrelay_core.nostr import schnorr_verify
from tests.bitcoin.vectors import SPENDS, spent_outputs, tapscript_sig_message, unsigned_tx


def _ids(case: dict) -> str:
    return f"input{case['given']['txinIndex']}-type{case['given']['hashType']:#04x}"


def test_the_vectors_cover_every_taproot_hash_type() -> None:
    assert {c["given"]["hashType"] for c in SPENDS} == TAPROOT_SIGHASH_TYPES


@pytest.mark.parametrize("case", SPENDS, ids=_ids)
def test_key_path_message_and_digest_are_the_vectors(case: dict) -> None:
    index, hash_type = case["given"]["txinIndex"], case["given"]["hashType"]
    message = taproot_sig_message(unsigned_tx(), index, spent_outputs(), hash_type)
    assert message.hex() == case["intermediary"]["sigMsg"]
    digest = taproot_sighash(unsigned_tx(), index, spent_outputs(), hash_type)
    assert digest.hex() == case["intermediary"]["sigHash"]


@pytest.mark.parametrize("case", SPENDS, ids=_ids)
def test_the_vectors_signatures_verify_over_our_digest_and_no_other(case: dict) -> None:
    index, hash_type = case["given"]["txinIndex"], case["given"]["hashType"]
    signature = bytes.fromhex(case["expected"]["witness"][0])
    assert len(signature) == (64 if hash_type == 0 else 65)
    output_key = spent_outputs()[index][0][2:]
    digest = taproot_sighash(unsigned_tx(), index, spent_outputs(), hash_type)
    assert schnorr_verify(output_key, digest, signature[:64])
    # The same signature does not verify over the digest of another hash type.
    other = 0x01 if hash_type != 0x01 else 0x00
    assert not schnorr_verify(
        output_key, taproot_sighash(unsigned_tx(), index, spent_outputs(), other), signature[:64]
    )


@pytest.mark.parametrize("case", SPENDS, ids=_ids)
def test_tapscript_message_extends_the_vectors_key_path_message(case: dict) -> None:
    """BIP 341 publishes key-path messages only; BIP 342's tapscript message is the same
    with spend_type's ext_flag bit set and the leaf hash, key_version 0 and codesep_pos
    appended, whatever the hash type."""
    index, hash_type = case["given"]["txinIndex"], case["given"]["hashType"]
    leaf = bytes.fromhex("20" + "11" * 32 + "ad20" + "22" * 32 + "ac")
    expected = tapscript_sig_message(case, leaf)
    got = taproot_sig_message(unsigned_tx(), index, spent_outputs(), hash_type, leaf=leaf)
    assert got == expected
    digest = taproot_sighash(unsigned_tx(), index, spent_outputs(), hash_type, leaf=leaf)
    assert digest == tagged_hash("TapSighash", expected)


def test_a_segwit_serialization_gives_the_same_digest() -> None:
    """Witnesses are no part of the message: the signed tx hashes as the unsigned one."""
    raw = unsigned_tx()
    inputs = len(spent_outputs())
    witnesses = b"".join(b"\x01\x40" + bytes([n]) * 64 for n in range(inputs))
    segwit = raw[:4] + b"\x00\x01" + raw[4:-4] + witnesses + raw[-4:]
    for case in SPENDS:
        index, hash_type = case["given"]["txinIndex"], case["given"]["hashType"]
        digest = taproot_sighash(segwit, index, spent_outputs(), hash_type)
        assert digest.hex() == case["intermediary"]["sigHash"]


@pytest.mark.parametrize("hash_type", [0x04, 0x20, 0x80, 0x84, 0xFF])
def test_hash_types_bip341_does_not_define_are_refused(hash_type: int) -> None:
    with pytest.raises(InvalidHashType) as caught:
        taproot_sighash(unsigned_tx(), 0, spent_outputs(), hash_type)
    assert caught.value.hash_type == hash_type


@pytest.mark.parametrize("hash_type", [0x03, 0x83])
def test_single_without_its_output_is_refused(hash_type: int) -> None:
    index = len(read_tx(unsigned_tx()).outputs)  # the first input with no output of its own
    assert index < len(spent_outputs())
    with pytest.raises(SingleWithoutOutput):
        taproot_sighash(unsigned_tx(), index, spent_outputs(), hash_type)
    # ALL signs the same input fine.
    taproot_sighash(unsigned_tx(), index, spent_outputs(), 0x01)


def test_malformed_arguments_are_refused() -> None:
    spent = spent_outputs()
    with pytest.raises(SighashError, match="out of range"):
        taproot_sighash(unsigned_tx(), len(spent), spent, 0)
    with pytest.raises(SighashError, match="spent outputs"):
        taproot_sighash(unsigned_tx(), 0, spent[:-1], 0)
    with pytest.raises(SighashError, match="malformed"):
        taproot_sighash(unsigned_tx()[:-1], 0, spent, 0)
    with pytest.raises(SighashError, match="malformed"):
        taproot_sighash(unsigned_tx() + b"\x00", 0, spent, 0)
