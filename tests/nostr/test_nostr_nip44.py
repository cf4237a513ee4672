"""NIP-44 v2 beyond the vector file: the extended length prefix, padding, failure modes."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from arkrelay_core.nostr import (
    InvalidKeyError,
    InvalidMacError,
    InvalidPaddingError,
    InvalidPayloadError,
    InvalidPlaintextLengthError,
    generate_secret_key,
    nip44,
    xonly_public_key,
)

# The "Extended length prefix test vectors" table of NIP-44 (44.md).
EXT_KEY = bytes.fromhex("c41c775356fd92eadc63ff5a0dc1da211b268cbea22316767095b2871ea1412d")
EXT_NONCE = bytes.fromhex("00" * 31 + "01")
EXTENDED_TABLE = [
    (
        65535,
        "6e1bebca6a8229364a162a72ef064826c4cd7457bf54f190ef782bd9deff3e42",
        "6d8c2810d1e870fbaa1f0a0937126cca837a15f9260e27060c331d70a3c0bc84",
    ),
    (
        65536,
        "bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a",
        "b7b4edb36ba92e267d322d56d9aebc22e7fa96ff52e3c12adc07f07a43cbc616",
    ),
    (
        65537,
        "008ffc88d3c96a9f307524eb361e47c5222a887fc45fa0c1fb8d429c5c23b430",
        "eeb7c7c5373894ea2c1547cfd3ccb15d5a0b2d619da852e5c79df792dcc9e435",
    ),
]


@pytest.mark.parametrize(
    ("length", "plaintext_sha256", "payload_sha256"),
    EXTENDED_TABLE,
    ids=[f"{row[0]}-bytes" for row in EXTENDED_TABLE],
)
def test_extended_prefix_table(length: int, plaintext_sha256: str, payload_sha256: str) -> None:
    plaintext = "a" * length
    assert hashlib.sha256(plaintext.encode()).hexdigest() == plaintext_sha256
    payload = nip44.encrypt(plaintext, EXT_KEY, EXT_NONCE, extended=True)
    assert hashlib.sha256(payload.encode()).hexdigest() == payload_sha256
    assert nip44.decrypt(payload, EXT_KEY) == plaintext


def test_extended_form_is_opt_in_for_writing() -> None:
    with pytest.raises(InvalidPlaintextLengthError, match=r"1\.\.65535 bytes, got 65536.*extended"):
        nip44.encrypt("a" * 65536, EXT_KEY)
    payload = nip44.encrypt("a" * 100_000, EXT_KEY, extended=True)
    # Reading needs no flag: the zero u16 announces the extended prefix by itself.
    assert nip44.decrypt(payload, EXT_KEY) == "a" * 100_000


def test_extended_writing_still_refuses_empty_plaintext() -> None:
    with pytest.raises(InvalidPlaintextLengthError):
        nip44.encrypt("", EXT_KEY, extended=True)


def test_pad_layout() -> None:
    assert nip44.pad("a") == b"\x00\x01a" + bytes(31)
    assert len(nip44.pad("a" * 33)) == 2 + 64
    assert nip44.pad("a" * 65536, extended=True)[:6] == b"\x00\x00\x00\x01\x00\x00"
    assert nip44.unpad(nip44.pad("héllo")) == "héllo"


@pytest.mark.parametrize(
    "padded",
    [
        b"",
        b"\x00",
        b"\x00\x00\x00\x00",
        b"\x00\x00" + (65535).to_bytes(4, "big") + b"a" * 65535 + b"\x00",
        b"\x00\x40" + b"a" * 32,
        b"\x00\x01a" + bytes(30),
        b"\x00\x01a" + bytes(63),
    ],
    ids=[
        "empty",
        "one-byte",
        "truncated-extended",
        "extended-below-threshold",
        "length-past-end",
        "padding-short",
        "padding-long",
    ],
)
def test_unpad_rejects(padded: bytes) -> None:
    with pytest.raises(InvalidPaddingError):
        nip44.unpad(padded)


def test_calc_padded_len_rejects_zero() -> None:
    with pytest.raises(InvalidPlaintextLengthError):
        nip44.calc_padded_len(0)


def test_conversation_key_is_symmetric() -> None:
    a, b = generate_secret_key(), generate_secret_key()
    assert nip44.get_conversation_key(a, xonly_public_key(b)) == nip44.get_conversation_key(
        b, xonly_public_key(a).hex()
    )


def test_fresh_nonce_per_message() -> None:
    first, second = nip44.encrypt("same", EXT_KEY), nip44.encrypt("same", EXT_KEY)
    assert first != second
    assert base64.b64decode(first)[1:33] != base64.b64decode(second)[1:33]


def test_bad_nonce_or_key_length() -> None:
    with pytest.raises(ValueError, match="nonce must be 32 bytes"):
        nip44.encrypt("x", EXT_KEY, b"\x00" * 24)
    with pytest.raises(InvalidKeyError):
        nip44.encrypt("x", EXT_KEY[:31])
    with pytest.raises(InvalidKeyError):
        nip44.decrypt(nip44.encrypt("x", EXT_KEY), EXT_KEY + b"\x00")


def test_tampering_anywhere_breaks_the_mac() -> None:
    data = bytearray(base64.b64decode(nip44.encrypt("pay 10 sat", EXT_KEY)))
    for index in (1, 40, len(data) - 1):
        tampered = bytearray(data)
        tampered[index] ^= 0x01
        with pytest.raises(InvalidMacError):
            nip44.decrypt(base64.b64encode(bytes(tampered)).decode(), EXT_KEY)


def test_wrong_conversation_key_breaks_the_mac() -> None:
    with pytest.raises(InvalidMacError):
        nip44.decrypt(nip44.encrypt("x", EXT_KEY), os.urandom(32))


def test_payload_size_limit() -> None:
    payload = nip44.encrypt("a" * 2000, EXT_KEY)
    with pytest.raises(InvalidPayloadError, match="limit"):
        nip44.decrypt(payload, EXT_KEY, max_payload_len=len(payload) - 1)
    assert nip44.decrypt(payload, EXT_KEY, max_payload_len=len(payload)) == "a" * 2000


def test_non_text_payload() -> None:
    with pytest.raises(InvalidPayloadError):
        nip44.decrypt(b"AgAA" * 40, EXT_KEY)  # type: ignore[arg-type]


def _seal(padded: bytes, key: bytes = EXT_KEY) -> str:
    """Encrypt an arbitrary padded block with a valid MAC, built from the NIP's recipe."""
    nonce = os.urandom(32)
    keys = nip44.get_message_keys(key, nonce)
    algorithm = algorithms.ChaCha20(keys.chacha_key, bytes(4) + keys.chacha_nonce)
    enc = Cipher(algorithm, mode=None).encryptor()
    ciphertext = enc.update(padded) + enc.finalize()
    mac = hmac.HMAC(keys.hmac_key, hashes.SHA256())
    mac.update(nonce + ciphertext)
    return base64.b64encode(b"\x02" + nonce + ciphertext + mac.finalize()).decode()


def test_authentic_payload_with_bad_padding() -> None:
    with pytest.raises(InvalidPaddingError):
        nip44.decrypt(_seal(b"\x00\x40" + b"a" * 32), EXT_KEY)


def test_authentic_payload_that_is_not_utf8() -> None:
    with pytest.raises(InvalidPayloadError, match="UTF-8"):
        nip44.decrypt(_seal(b"\x00\x02\xff\xfe" + bytes(30)), EXT_KEY)


def test_independent_construction_decrypts() -> None:
    assert nip44.decrypt(_seal(nip44.pad("built by hand")), EXT_KEY) == "built by hand"


def test_unencodable_plaintext() -> None:
    with pytest.raises(InvalidPayloadError, match="Unicode"):
        nip44.encrypt("\udc80", EXT_KEY)


# -- properties ------------------------------------------------------------------------------


def _check_round_trip(plaintext: str, key: bytes) -> None:
    size = len(plaintext.encode())
    payload = nip44.encrypt(plaintext, key)
    assert len(base64.b64decode(payload)) == 1 + 32 + 2 + nip44.calc_padded_len(size) + 32
    assert nip44.decrypt(payload, key) == plaintext


@settings(max_examples=150, deadline=None)
@given(plaintext=st.text(min_size=1, max_size=2000), key=st.binary(min_size=32, max_size=32))
def test_round_trip_arbitrary_text(plaintext: str, key: bytes) -> None:
    _check_round_trip(plaintext, key)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, nip44.MAX_PLAINTEXT_SIZE),
    seed=st.text(min_size=1, max_size=8),
    key=st.binary(min_size=32, max_size=32),
)
def test_round_trip_any_size_up_to_the_limit(size: int, seed: str, key: bytes) -> None:
    raw = (seed * (size // len(seed.encode()) + 1)).encode()[:size]
    plaintext = raw.decode("utf-8", errors="ignore")  # drop a character cut in half at the end
    assume(plaintext)
    _check_round_trip(plaintext, key)
