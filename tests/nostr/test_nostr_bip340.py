"""BIP340 keys and signatures, checked against the BIP's own test vectors."""

from __future__ import annotations

import csv
import os
import pickle
from pathlib import Path

import pytest

from arkrelay_core.nostr import (
    KeyFormatError,
    generate_secret_key,
    is_valid_public_key,
    schnorr_sign,
    schnorr_verify,
    xonly_public_key,
)
from arkrelay_core.nostr.bip340 import SigningKey, signing_key

# bitcoin/bips bip-0340/test-vectors.csv (rows 0-14: the 32-byte-message vectors).
with (Path(__file__).parent / "bip340_vectors.csv").open(newline="") as f:
    BIP340 = list(csv.DictReader(f))

SIGNING = [row for row in BIP340 if row["secret key"]]
CURVE_ORDER = bytes.fromhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")


def _row_id(row: dict[str, str]) -> str:
    return f"bip340-{row['index']}"


@pytest.mark.parametrize("row", SIGNING, ids=_row_id)
def test_sign_matches_bip340_vector(row: dict[str, str]) -> None:
    secret = bytes.fromhex(row["secret key"])
    assert xonly_public_key(secret).hex() == row["public key"].lower()
    signature = schnorr_sign(secret, bytes.fromhex(row["message"]), bytes.fromhex(row["aux_rand"]))
    assert signature.hex() == row["signature"].lower()


@pytest.mark.parametrize("row", BIP340, ids=_row_id)
def test_verify_matches_bip340_vector(row: dict[str, str]) -> None:
    result = schnorr_verify(
        bytes.fromhex(row["public key"]),
        bytes.fromhex(row["message"]),
        bytes.fromhex(row["signature"]),
    )
    assert result is (row["verification result"] == "TRUE")


def test_fresh_key_signs_and_verifies() -> None:
    secret = generate_secret_key()
    assert len(secret) == 32
    pubkey = xonly_public_key(secret)
    msg = os.urandom(32)
    sig = schnorr_sign(secret, msg)
    assert len(sig) == 64
    assert schnorr_verify(pubkey, msg, sig)
    assert not schnorr_verify(pubkey, os.urandom(32), sig)


def test_default_aux_rand_is_fresh_randomness() -> None:
    secret, msg = generate_secret_key(), os.urandom(32)
    assert schnorr_sign(secret, msg) != schnorr_sign(secret, msg)


@pytest.mark.parametrize(
    ("pubkey", "msg", "sig"),
    [
        (b"\x01" * 31, b"\x00" * 32, b"\x00" * 64),
        (b"\x01" * 32, b"\x00" * 31, b"\x00" * 64),
        (b"\x01" * 32, b"\x00" * 32, b"\x00" * 63),
        ("aa" * 32, b"\x00" * 32, b"\x00" * 64),
        (None, None, None),
        (b"\xff" * 32, b"\x00" * 32, b"\x00" * 64),
    ],
    ids=["short-pubkey", "short-msg", "short-sig", "hex-str-pubkey", "none", "pubkey-off-curve"],
)
def test_verify_returns_false_on_malformed_input(pubkey: object, msg: object, sig: object) -> None:
    assert schnorr_verify(pubkey, msg, sig) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "secret",
    [b"\x00" * 32, CURVE_ORDER, b"\xff" * 32, b"\x01" * 31, b"\x01" * 33, "01" * 32],
    ids=["zero", "curve-order", "above-order", "short", "long", "hex-str"],
)
def test_invalid_secret_keys_are_rejected(secret: object) -> None:
    with pytest.raises(KeyFormatError):
        xonly_public_key(secret)  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        schnorr_sign(secret, b"\x00" * 32)  # type: ignore[arg-type]


def test_sign_rejects_wrong_message_or_aux_length() -> None:
    secret = generate_secret_key()
    with pytest.raises(ValueError, match="message must be 32 bytes"):
        schnorr_sign(secret, b"\x00" * 31)
    with pytest.raises(ValueError, match="aux_rand must be 32 bytes"):
        schnorr_sign(secret, b"\x00" * 32, b"\x00" * 16)


def test_is_valid_public_key() -> None:
    assert is_valid_public_key(xonly_public_key(generate_secret_key()))
    assert not is_valid_public_key(b"\xff" * 32)
    assert not is_valid_public_key(b"\x00" * 32)
    assert not is_valid_public_key(b"\x01" * 31)


@pytest.mark.parametrize("row", SIGNING, ids=_row_id)
def test_prepared_signing_key_matches_bip340_vector(row: dict[str, str]) -> None:
    key = SigningKey(bytes.fromhex(row["secret key"]))
    assert key.public_key.hex() == key.public_key_hex == row["public key"].lower()
    signature = key.sign(bytes.fromhex(row["message"]), bytes.fromhex(row["aux_rand"]))
    assert signature.hex() == row["signature"].lower()
    # The same key given as bytes or prepared signs the same way.
    assert schnorr_sign(key, bytes.fromhex(row["message"]), bytes.fromhex(row["aux_rand"])) == (
        signature
    )


@pytest.mark.parametrize(
    "secret",
    [b"\x00" * 32, CURVE_ORDER, b"\xff" * 32, b"\x01" * 31, "01" * 32],
    ids=["zero", "curve-order", "above-order", "short", "hex-str"],
)
def test_prepared_signing_key_rejects_invalid_secrets(secret: object) -> None:
    with pytest.raises(KeyFormatError):
        SigningKey(secret)  # type: ignore[arg-type]


def test_prepared_signing_key_keeps_its_secret_out_of_sight() -> None:
    secret = generate_secret_key()
    key = SigningKey(secret)
    assert key.secret == secret
    assert secret.hex() not in repr(key) and key.public_key_hex in repr(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_prepared_signing_key_rejects_wrong_message_or_aux_length() -> None:
    key = SigningKey(generate_secret_key())
    with pytest.raises(ValueError, match="message must be 32 bytes"):
        key.sign(b"\x00" * 31)
    with pytest.raises(ValueError, match="aux_rand must be 32 bytes"):
        key.sign(b"\x00" * 32, b"\x00" * 16)


def test_signing_key_returns_a_prepared_key_as_is_and_prepares_bytes_once() -> None:
    key = SigningKey(generate_secret_key())
    assert signing_key(key) is key
    secret = generate_secret_key()
    assert signing_key(secret) is signing_key(bytearray(secret))
    assert signing_key(secret).public_key == xonly_public_key(secret)
