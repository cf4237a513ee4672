"""The JSON messages an intent proof signs, spelled as arkd spells them.

A proof commits to the exact bytes of its message, and arkd re-encodes some messages before
verifying (pkg/ark-lib/intent/message.go at v0.9.15), so a client must sign the same
spelling: Go's encoding/json of the message struct, fields in declaration order, no spaces,
an unset list as ``null``.
"""

from __future__ import annotations

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


def decode(text: str) -> RegisterMessage | ExpiryMessage:
    """A message of any known type; ValueError for anything else."""
    try:
        kind = msgspec.json.decode(text, type=ExpiryMessage).type
        cls = _KINDS[kind]
        return msgspec.json.decode(text, type=cls)
    except (msgspec.DecodeError, KeyError) as exc:
        raise ValueError(f"invalid intent message: {exc}") from exc
