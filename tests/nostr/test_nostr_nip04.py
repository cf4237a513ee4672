"""NIP-04 encryption, and the unhashed ECDH both DM schemes rest on."""

from __future__ import annotations

import base64
import os
import re

import coincurve
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from arkrelay_core.nostr import (
    DecryptError,
    InvalidKeyError,
    InvalidPaddingError,
    InvalidPayloadError,
    generate_secret_key,
    nip04,
    xonly_public_key,
)
from arkrelay_core.nostr._ecdh import shared_x

ALICE = generate_secret_key()
BOB = generate_secret_key()
ALICE_PUB = xonly_public_key(ALICE).hex()
BOB_PUB = xonly_public_key(BOB).hex()
B64 = r"[A-Za-z0-9+/]+={0,2}"


def _raw_content(key: bytes, padded_plaintext: bytes, iv: bytes | None = None) -> str:
    """AES-256-CBC without any padding logic, for crafting bad padding on purpose."""
    iv = iv or os.urandom(16)
    enc = Cipher(algorithms.AES256(key), modes.CBC(iv)).encryptor()
    ct = enc.update(padded_plaintext) + enc.finalize()
    return f"{base64.b64encode(ct).decode()}?iv={base64.b64encode(iv).decode()}"


def test_shared_x_is_the_unhashed_x_coordinate() -> None:
    # libsecp256k1 (through coincurve) multiplies the same point independently.
    expected = coincurve.PublicKey(b"\x02" + bytes.fromhex(BOB_PUB)).multiply(ALICE).format()[1:]
    assert shared_x(ALICE, BOB_PUB) == expected
    assert shared_x(BOB, ALICE_PUB) == expected


def test_shared_x_agrees_with_openssl_ecdh() -> None:
    # SEC 1 ECDH (OpenSSL, through cryptography) is the x coordinate as well.
    for _ in range(20):
        secret, peer_secret = generate_secret_key(), generate_secret_key()
        peer = xonly_public_key(peer_secret)
        point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), b"\x02" + peer)
        private = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256K1())
        assert shared_x(secret, peer) == private.exchange(ec.ECDH(), point)


def test_shared_x_refuses_a_secret_out_of_range() -> None:
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    for scalar in (order, order + 1, 2**256 - 1):
        with pytest.raises(InvalidKeyError):
            shared_x(scalar.to_bytes(32, "big"), BOB_PUB)


@pytest.mark.parametrize(
    "plaintext",
    ["hello", "", "x" * 16, '{"action":"get_info"} é 😀 \u2028', "a" * 70_000],
    ids=["short", "empty", "one-block", "unicode", "long"],
)
def test_round_trip_between_two_keys(plaintext: str) -> None:
    content = nip04.encrypt(ALICE, BOB_PUB, plaintext)
    assert re.fullmatch(rf"{B64}\?iv={B64}", content)
    ct_b64, iv_b64 = content.split("?iv=")
    assert len(base64.b64decode(iv_b64)) == 16
    assert len(base64.b64decode(ct_b64)) % 16 == 0
    assert nip04.decrypt(BOB, ALICE_PUB, content) == plaintext


def test_each_message_gets_a_fresh_iv() -> None:
    assert nip04.encrypt(ALICE, BOB_PUB, "same") != nip04.encrypt(ALICE, BOB_PUB, "same")


def test_peer_key_as_bytes_or_uppercase_hex() -> None:
    content = nip04.encrypt(ALICE, bytes.fromhex(BOB_PUB), "hi")
    assert nip04.decrypt(BOB, ALICE_PUB.upper(), content) == "hi"


def test_wrong_key_never_yields_the_plaintext() -> None:
    content = nip04.encrypt(ALICE, BOB_PUB, "secret text")
    stranger = generate_secret_key()
    try:
        result = nip04.decrypt(stranger, ALICE_PUB, content)
    except DecryptError:
        return
    assert result != "secret text"


def test_bad_padding_is_reported() -> None:
    key = shared_x(ALICE, BOB_PUB)
    content = _raw_content(key, b"sixteen bytes!!\x00")
    with pytest.raises(InvalidPaddingError):
        nip04.decrypt(BOB, ALICE_PUB, content)


def test_plaintext_that_is_not_utf8_is_reported() -> None:
    key = shared_x(ALICE, BOB_PUB)
    content = _raw_content(key, b"\xff\xfe" + b"\x0e" * 14)
    with pytest.raises(InvalidPayloadError, match="UTF-8"):
        nip04.decrypt(BOB, ALICE_PUB, content)


IV16 = base64.b64encode(bytes(16)).decode()
CT16 = base64.b64encode(bytes(16)).decode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (CT16, "no '\\?iv=' part"),
        (f"!!!?iv={IV16}", "ciphertext is not valid base64"),
        (f"{CT16}?iv=&&", "iv is not valid base64"),
        (f"{CT16}?iv={base64.b64encode(bytes(8)).decode()}", "iv must be 16 bytes, got 8"),
        (f"{base64.b64encode(bytes(15)).decode()}?iv={IV16}", "whole number of AES blocks"),
        (f"?iv={IV16}", "whole number of AES blocks"),
        (f"фф?iv={IV16}", "not valid base64"),
    ],
    ids=["no-iv", "bad-ct", "bad-iv", "short-iv", "partial-block", "empty-ct", "non-ascii"],
)
def test_malformed_content(content: str, message: str) -> None:
    with pytest.raises(InvalidPayloadError, match=message):
        nip04.decrypt(BOB, ALICE_PUB, content)


@pytest.mark.parametrize(
    ("secret", "peer"),
    [
        (bytes(32), BOB_PUB),
        (b"\x01" * 31, BOB_PUB),
        (ALICE, "ff" * 32),
        (ALICE, "zz" * 32),
        (ALICE, BOB_PUB[:-2]),
    ],
    ids=["zero-secret", "short-secret", "pubkey-off-curve", "pubkey-not-hex", "short-pubkey"],
)
def test_invalid_keys(secret: bytes, peer: str) -> None:
    with pytest.raises(InvalidKeyError):
        nip04.encrypt(secret, peer, "x")
    with pytest.raises(InvalidKeyError):
        nip04.decrypt(secret, peer, f"{CT16}?iv={IV16}")


def test_unencodable_plaintext() -> None:
    with pytest.raises(InvalidPayloadError, match="Unicode"):
        nip04.encrypt(ALICE, BOB_PUB, "\ud800")
