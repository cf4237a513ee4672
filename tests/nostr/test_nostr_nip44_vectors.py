"""Every vector of the official NIP-44 v2 test-vector file, each as its own test."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from arkrelay_core.nostr import nip44, xonly_public_key
from arkrelay_core.nostr.errors import (
    DecryptError,
    InvalidKeyError,
    InvalidMacError,
    InvalidPaddingError,
    InvalidPayloadError,
    InvalidPlaintextLengthError,
    UnsupportedVersionError,
)

VECTORS_FILE = Path(__file__).resolve().parents[1] / "data" / "nip44.vectors.json"
V2 = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["v2"]
VALID = V2["valid"]
INVALID = V2["invalid"]

# What each kind of invalid payload must raise; an unmapped note fails the test loudly.
DECRYPT_ERROR_BY_NOTE: dict[str, type[DecryptError]] = {
    "unknown encryption version": UnsupportedVersionError,
    "unknown encryption version 0": UnsupportedVersionError,
    "invalid base64": InvalidPayloadError,
    "invalid MAC": InvalidMacError,
    "invalid padding": InvalidPaddingError,
}


def _ids(prefix: str, vectors: list[dict[str, Any]]) -> list[str]:
    ids = []
    for i, vector in enumerate(vectors):
        note = re.sub(r"[^A-Za-z0-9]+", "-", vector.get("note", "")).strip("-")
        ids.append(f"{prefix}{i}" + (f"-{note}" if note else ""))
    return ids


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


# -- valid -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vector", VALID["get_conversation_key"], ids=_ids("ck", VALID["get_conversation_key"])
)
def test_get_conversation_key(vector: dict[str, Any]) -> None:
    key = nip44.get_conversation_key(_h(vector["sec1"]), vector["pub2"])
    assert key.hex() == vector["conversation_key"]


MESSAGE_KEYS = VALID["get_message_keys"]


@pytest.mark.parametrize(
    "vector", MESSAGE_KEYS["keys"], ids=[f"nonce-{k['nonce'][:12]}" for k in MESSAGE_KEYS["keys"]]
)
def test_get_message_keys(vector: dict[str, str]) -> None:
    keys = nip44.get_message_keys(_h(MESSAGE_KEYS["conversation_key"]), _h(vector["nonce"]))
    assert keys.chacha_key.hex() == vector["chacha_key"]
    assert keys.chacha_nonce.hex() == vector["chacha_nonce"]
    assert keys.hmac_key.hex() == vector["hmac_key"]


@pytest.mark.parametrize(
    ("unpadded", "padded"),
    VALID["calc_padded_len"],
    ids=[f"{u}-to-{p}" for u, p in VALID["calc_padded_len"]],
)
def test_calc_padded_len(unpadded: int, padded: int) -> None:
    assert nip44.calc_padded_len(unpadded) == padded


@pytest.mark.parametrize(
    "vector", VALID["encrypt_decrypt"], ids=_ids("msg", VALID["encrypt_decrypt"])
)
def test_encrypt_decrypt(vector: dict[str, Any]) -> None:
    # The conversation the NIP describes: sec1 writes to pub2, sec2 reads from pub1.
    sec1, sec2 = _h(vector["sec1"]), _h(vector["sec2"])
    key_1 = nip44.get_conversation_key(sec1, xonly_public_key(sec2))
    assert key_1.hex() == vector["conversation_key"]
    payload = nip44.encrypt(vector["plaintext"], key_1, _h(vector["nonce"]))
    assert payload == vector["payload"]

    key_2 = nip44.get_conversation_key(sec2, xonly_public_key(sec1))
    assert key_2 == key_1
    assert nip44.decrypt(payload, key_2) == vector["plaintext"]


def _long_plaintext(vector: dict[str, Any]) -> str:
    # Upstream names the repeated text "pattern"; this copy of the file calls it "letter".
    pattern = vector["pattern"] if "pattern" in vector else vector["letter"]
    return pattern * vector["repeat"]


def _payload_checksum(vector: dict[str, Any]) -> str:
    return vector.get("payload_sha256", vector.get("payload_checksum_sha256", ""))


LONG = VALID["encrypt_decrypt_long_msg"]


@pytest.mark.parametrize("vector", LONG, ids=_ids("long", LONG))
def test_long_message_round_trip(vector: dict[str, Any]) -> None:
    plaintext = _long_plaintext(vector)
    raw = plaintext.encode()
    if "plaintext_sha256" in vector:
        assert hashlib.sha256(raw).hexdigest() == vector["plaintext_sha256"]
    key = _h(vector["conversation_key"])
    # Past 65535 bytes only the NIP's extended length prefix can carry the message.
    extended = len(raw) > nip44.MAX_PLAINTEXT_SIZE
    payload = nip44.encrypt(plaintext, key, _h(vector["nonce"]), extended=extended)

    data = base64.b64decode(payload)
    prefix = 6 if extended else 2
    assert len(data) == 1 + 32 + prefix + nip44.calc_padded_len(len(raw)) + 32
    assert data[1:33] == _h(vector["nonce"])
    assert nip44.decrypt(payload, key) == plaintext


def _checksum_param(vector: dict[str, Any]) -> Any:
    if _payload_checksum(vector):
        return vector
    return pytest.param(
        vector,
        marks=pytest.mark.xfail(
            strict=True,
            reason="this copy of the vector file has an empty payload checksum, so the payload "
            "cannot be checked against it (test_interop_nostr_tools compares it with nostr-tools)",
        ),
    )


@pytest.mark.parametrize("vector", [_checksum_param(v) for v in LONG], ids=_ids("long", LONG))
def test_long_message_payload_checksum(vector: dict[str, Any]) -> None:
    plaintext = _long_plaintext(vector)
    extended = len(plaintext.encode()) > nip44.MAX_PLAINTEXT_SIZE
    payload = nip44.encrypt(
        plaintext, _h(vector["conversation_key"]), _h(vector["nonce"]), extended=extended
    )
    assert hashlib.sha256(payload.encode()).hexdigest() == _payload_checksum(vector)


# -- invalid ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "length",
    INVALID["encrypt_msg_lengths"],
    ids=[f"{n}-bytes" for n in INVALID["encrypt_msg_lengths"]],
)
def test_encrypt_rejects_message_length(length: int) -> None:
    with pytest.raises(InvalidPlaintextLengthError):
        nip44.encrypt("a" * length, os.urandom(32))


@pytest.mark.parametrize(
    "length",
    INVALID["decrypt_msg_lengths"],
    ids=[f"{n}-bytes" for n in INVALID["decrypt_msg_lengths"]],
)
def test_decrypt_rejects_short_payload(length: int) -> None:
    # A valid version byte first, so only the length checks can reject it.
    raw = (b"\x02" + os.urandom(length - 1)) if length else b""
    with pytest.raises(InvalidPayloadError):
        nip44.decrypt(base64.b64encode(raw).decode(), os.urandom(32))


@pytest.mark.parametrize(
    "vector", INVALID["get_conversation_key"], ids=_ids("ck", INVALID["get_conversation_key"])
)
def test_get_conversation_key_rejects(vector: dict[str, Any]) -> None:
    with pytest.raises(InvalidKeyError):
        nip44.get_conversation_key(_h(vector["sec1"]), vector["pub2"])


@pytest.mark.parametrize("vector", INVALID["decrypt"], ids=_ids("decrypt", INVALID["decrypt"]))
def test_decrypt_rejects(vector: dict[str, Any]) -> None:
    expected = DECRYPT_ERROR_BY_NOTE[vector["note"]]
    with pytest.raises(expected):
        nip44.decrypt(vector["payload"], _h(vector["conversation_key"]))
