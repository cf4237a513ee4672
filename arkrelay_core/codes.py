"""Stable error codes (PROTOCOL.md §7). Never renumber; only add."""

from __future__ import annotations

import enum

__all__ = ["ErrorCode"]


class ErrorCode(enum.IntEnum):
    INVALID_SIGNATURE = 1001
    MALFORMED_CONTENT = 1002
    EXPIRED = 1003
    REPLAYED_ACTION = 1004
    UNSUPPORTED_ACTION = 1005
    WRONG_NETWORK = 1006
    CANNOT_DECRYPT = 1007
    RATE_LIMITED = 1008
    INSUFFICIENT_BALANCE = 2001
    VTXO_ALREADY_SPENT = 2002
    VTXO_NOT_OWNED = 2003
    VTXO_EXPIRED = 2004
    UNKNOWN_ASSET = 2005
    BATCH_INVALID = 3001
    SIGNING_TIMEOUT = 3002
    INVALID_SIGNING_RESPONSE = 3003
    SESSION_CANCELLED = 3004
    BATCH_COUNTERPARTY_FAILED = 3005
    FEE_INCORRECT = 4001
    ARK_UNAVAILABLE = 5001
    LIGHTNING_PAYMENT_FAILED = 5002
    INVOICE_INVALID = 5003
    ASSET_BACKEND_ERROR = 5004
    CIRCUIT_OPEN = 5005
    INTERNAL = 9001

    @property
    def message(self) -> str:
        """The one-line meaning PROTOCOL.md gives the code."""
        return _MESSAGES[self]

    @property
    def retryable(self) -> bool:
        """Whether the same intent (with a fresh action_id) may succeed later unchanged.

        Transient conditions on our side are retryable; anything the wallet must change
        first (its input, its balance, its signature) is not.
        """
        return self in _RETRYABLE

    @property
    def answered(self) -> bool:
        """1001 is counted, never answered: replying would make us sign on demand."""
        return self is not ErrorCode.INVALID_SIGNATURE


_MESSAGES = {
    ErrorCode.INVALID_SIGNATURE: "invalid Nostr signature or id",
    ErrorCode.MALFORMED_CONTENT: "malformed content / schema violation",
    ErrorCode.EXPIRED: "intent expired or event stale",
    ErrorCode.REPLAYED_ACTION: "replayed action_id",
    ErrorCode.UNSUPPORTED_ACTION: "unsupported action type",
    ErrorCode.WRONG_NETWORK: "wrong network or protocol version",
    ErrorCode.CANNOT_DECRYPT: "cannot decrypt content",
    ErrorCode.RATE_LIMITED: "rate limited",
    ErrorCode.INSUFFICIENT_BALANCE: "insufficient VTXO balance",
    ErrorCode.VTXO_ALREADY_SPENT: "input VTXO already spent",
    ErrorCode.VTXO_NOT_OWNED: "VTXO not owned by the intent's author",
    ErrorCode.VTXO_EXPIRED: "VTXO expired",
    ErrorCode.UNKNOWN_ASSET: "unknown or disabled asset",
    ErrorCode.BATCH_INVALID: "atomic batch validation failed",
    ErrorCode.SIGNING_TIMEOUT: "signing step or session timed out",
    ErrorCode.INVALID_SIGNING_RESPONSE: "invalid signing response",
    ErrorCode.SESSION_CANCELLED: "session cancelled",
    ErrorCode.BATCH_COUNTERPARTY_FAILED: "batch counterparty failed",
    ErrorCode.FEE_INCORRECT: "fee output missing or incorrect",
    ErrorCode.ARK_UNAVAILABLE: "Ark backend unavailable",
    ErrorCode.LIGHTNING_PAYMENT_FAILED: "Lightning payment failed",
    ErrorCode.INVOICE_INVALID: "invoice expired or invalid",
    ErrorCode.ASSET_BACKEND_ERROR: "asset backend error",
    ErrorCode.CIRCUIT_OPEN: "backend circuit open, try later",
    ErrorCode.INTERNAL: "internal error",
}

_RETRYABLE = frozenset(
    {
        ErrorCode.RATE_LIMITED,
        ErrorCode.SIGNING_TIMEOUT,
        ErrorCode.BATCH_COUNTERPARTY_FAILED,
        ErrorCode.ARK_UNAVAILABLE,
        ErrorCode.LIGHTNING_PAYMENT_FAILED,
        ErrorCode.ASSET_BACKEND_ERROR,
        ErrorCode.CIRCUIT_OPEN,
        ErrorCode.INTERNAL,
    }
)
