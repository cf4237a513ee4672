"""What a wallet signs for a `sign_payload` challenge (PROTOCOL.md §3)."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

__all__ = ["canonical_json", "payload_ref", "sign_payload_digest"]

_encoder = msgspec.json.Encoder(order="sorted")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8 (not ASCII-escaped)."""
    return _encoder.encode(value)


def sign_payload_digest(domain: str, payload: Any) -> str:
    """hex(sha256(utf8(domain) || 0x0a || canonical_json(payload)))."""
    h = hashlib.sha256()
    h.update(domain.encode())
    h.update(b"\n")
    h.update(canonical_json(payload))
    return h.hexdigest()


def payload_ref(payload_to_sign: str) -> str:
    return "sha256:" + payload_to_sign
