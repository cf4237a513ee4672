"""Event kinds of the ArkRelay wire protocol (PROTOCOL.md §1)."""

from __future__ import annotations

import enum

__all__ = ["ENCRYPTED_KINDS", "EPHEMERAL_KINDS", "Kind"]


class Kind(enum.IntEnum):
    SERVICE_REQUEST = 31500
    SERVICE_RESPONSE = 31501
    NOTIFICATION = 31502
    INTENT = 31510
    CHALLENGE = 31511
    SIGNING_RESPONSE = 31512
    CONFIRMATION = 31340
    FAILURE = 31341
    L1_COMMITMENT = 31342


#: Kinds whose `content` is NIP-44 (or, for old peers, NIP-04) ciphertext.
ENCRYPTED_KINDS = frozenset(
    {
        Kind.SERVICE_REQUEST,
        Kind.SERVICE_RESPONSE,
        Kind.NOTIFICATION,
        Kind.CHALLENGE,
        Kind.SIGNING_RESPONSE,
        Kind.FAILURE,
    }
)

#: Kinds that only matter for a while and so carry a NIP-40 `expiration` tag.
EPHEMERAL_KINDS = frozenset(
    {Kind.SERVICE_RESPONSE, Kind.NOTIFICATION, Kind.CHALLENGE, Kind.FAILURE}
)
