"""The JSON messages an intent proof signs, spelled as arkd spells them.

A proof commits to the exact bytes of its message, and arkd re-encodes some messages before
verifying (pkg/ark-lib/intent/message.go at v0.9.15), so a client must sign the same
spelling: Go's encoding/json of the message struct, fields in declaration order, no spaces,
an unset list as ``null``.
"""

from __future__ import annotations

import json

import msgspec

__all__ = [
    "DELETE",
    "ESTIMATE_INTENT_FEE",
    "GET_DATA",
    "GET_INTENT",
    "GET_PENDING_TX",
    "REGISTER",
    "ExpiryMessage",
    "RegisterMessage",
    "decode",
    "encode",
]

REGISTER = "register"
DELETE = "delete"
GET_PENDING_TX = "get-pending-tx"
ESTIMATE_INTENT_FEE = "estimate-intent-fee"
GET_INTENT = "get-intent"
GET_DATA = "get-data"


class RegisterMessage(msgspec.Struct, frozen=True):
    """``register`` and ``estimate-intent-fee``: which outputs are onchain, the validity
    window (0 = unbounded) and the cosigners of the batch tree."""

    type: str = REGISTER
    onchain_output_indexes: list[int] | None = None
    valid_at: int = 0
    expire_at: int = 0
    cosigners_public_keys: list[str] | None = None


class ExpiryMessage(msgspec.Struct, frozen=True):
    """``delete``, ``get-pending-tx``, ``get-intent`` and ``get-data``: an expiry only."""

    type: str
    expire_at: int = 0


_KINDS: dict[str, type[RegisterMessage] | type[ExpiryMessage]] = {
    REGISTER: RegisterMessage,
    ESTIMATE_INTENT_FEE: RegisterMessage,
    DELETE: ExpiryMessage,
    GET_PENDING_TX: ExpiryMessage,
    GET_INTENT: ExpiryMessage,
    GET_DATA: ExpiryMessage,
}


def encode(message: RegisterMessage | ExpiryMessage) -> str:
    """The string to sign (and the one arkd re-encodes to)."""
    return msgspec.json.encode(message).decode()


def decode(text: str, kind: str | None = None) -> RegisterMessage | ExpiryMessage:
    """Read ``text`` as arkd's ``Decode`` does: Go's encoding/json (keys matched
    case-insensitively, the last duplicate winning, unknown keys ignored, ``null`` leaving
    a field unset), then the type checked (against ``kind`` when given). ValueError for
    anything arkd refuses."""
    try:
        pairs = json.loads(text, object_pairs_hook=list)
    except ValueError as exc:
        raise ValueError(f"invalid intent message: {exc}") from exc
    if not isinstance(pairs, list):
        raise ValueError("invalid intent message: not an object")
    folded = {key.casefold(): value for key, value in pairs if value is not None}
    declared = folded.get("type", "")
    cls = _KINDS.get(declared) if isinstance(declared, str) else None
    if cls is None or (kind is not None and declared != kind):
        raise ValueError(f"invalid intent message type: {declared}")
    fields = {name: folded[name] for name in cls.__struct_fields__ if name in folded}
    try:
        return msgspec.convert(fields, type=cls, strict=True)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid intent message: {exc}") from exc
