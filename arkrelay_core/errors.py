"""The gateway's exception tree.

Every error that can reach a wallet carries its PROTOCOL.md §7 code; plugins map the
errors of their lower layer (gRPC status, SQL, websocket) to the most specific class here
with ``raise ... from exc``, so the core never inspects a foreign exception.

    ArkRelayError
    ├── ProtocolViolation        bad inbound content or request (1xxx, 3001, 3003, 4001, ...)
    ├── PluginError              a plugin failed to import, register or build
    ├── UnsupportedOperation     an optional capability the plugin lacks (see `features`)
    └── BackendError             a daemon (arkd, lnd, tapd) refused or failed
        ├── BackendUnavailable       5001 (or the backend's own "down" code)
        ├── CircuitOpen              5005: too many recent failures, not called at all
        ├── InsufficientBalance      2001
        ├── VtxoAlreadySpent         2002
        ├── VtxoNotOwned             2003
        ├── VtxoExpired              2004
        ├── UnknownAsset             2005
        ├── PaymentFailed            5002: definitely failed, safe to refund
        ├── InvoiceInvalid           5003
        └── AssetBackendFailure      5004

Configuration errors (``arkrelay_core.config.ConfigError``) and store errors are separate:
they are the operator's, not a wallet's.
"""

from __future__ import annotations

from .codes import ErrorCode

__all__ = [
    "ArkRelayError",
    "AssetBackendFailure",
    "BackendError",
    "BackendUnavailable",
    "CircuitOpen",
    "InsufficientBalance",
    "InvoiceInvalid",
    "PaymentFailed",
    "PluginError",
    "ProtocolViolation",
    "UnknownAsset",
    "UnsupportedOperation",
    "VtxoAlreadySpent",
    "VtxoExpired",
    "VtxoNotOwned",
]


class ArkRelayError(Exception):
    """Root of every error the gateway raises on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str = "", *, code: ErrorCode | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(message or self.code.message)

    @property
    def message(self) -> str:
        return str(self)


class ProtocolViolation(ArkRelayError):
    """The peer sent something PROTOCOL.md does not allow; ``code`` says what."""

    code = ErrorCode.MALFORMED_CONTENT


class PluginError(ArkRelayError):
    """A plugin could not be imported, registered or built."""


class BackendError(ArkRelayError):
    """A backend daemon refused or failed a call."""

    code = ErrorCode.ARK_UNAVAILABLE


class BackendUnavailable(BackendError):
    """The daemon could not be reached (or answered that it is down)."""


class CircuitOpen(BackendError):
    code = ErrorCode.CIRCUIT_OPEN


class InsufficientBalance(BackendError):
    code = ErrorCode.INSUFFICIENT_BALANCE


class VtxoAlreadySpent(BackendError):
    code = ErrorCode.VTXO_ALREADY_SPENT


class VtxoNotOwned(BackendError):
    code = ErrorCode.VTXO_NOT_OWNED


class VtxoExpired(BackendError):
    code = ErrorCode.VTXO_EXPIRED


class UnknownAsset(BackendError):
    code = ErrorCode.UNKNOWN_ASSET


class PaymentFailed(BackendError):
    """The payment definitely failed; no HTLC can still land. Only then may we refund."""

    code = ErrorCode.LIGHTNING_PAYMENT_FAILED


class InvoiceInvalid(BackendError):
    code = ErrorCode.INVOICE_INVALID


class AssetBackendFailure(BackendError):
    code = ErrorCode.ASSET_BACKEND_ERROR


class UnsupportedOperation(ArkRelayError):
    """The plugin does not offer this optional capability (see its ``features``)."""
