"""tapd's gRPC errors -> ArkRelay's exception tree (and PROTOCOL.md codes).

    call could not reach tapd (UNAVAILABLE, DEADLINE_EXCEEDED, ...) -> BackendUnavailable (5004)
    refusal about an asset (meta lookup, asset invoice, unknown id) -> UnknownAsset (2005)
    refusal of a pay request (bad invoice, already paid)            -> InvoiceInvalid (5003)
    a refused macaroon, any other refusal                           -> AssetBackendFailure (5004)

Like lnd, tapd sends most refusals as UNKNOWN with a message, so UNKNOWN is an answer.
"""

from __future__ import annotations

import grpc
from arkrelay_lnd.errors import answered

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import (
    ArkRelayError,
    AssetBackendFailure,
    BackendUnavailable,
    InvoiceInvalid,
    UnknownAsset,
)

__all__ = ["answered", "map_rpc_error", "unavailable"]

_ASSET_METHODS = frozenset({"FetchAssetMeta", "AddInvoice"})
_UNKNOWN_ASSET_WORDS = ("not found", "unknown asset", "no asset", "asset meta")
_PAY_METHODS = frozenset({"SendPayment"})


def unavailable(message: str) -> BackendUnavailable:
    return BackendUnavailable(message, code=ErrorCode.ASSET_BACKEND_ERROR)


def map_rpc_error(exc: grpc.RpcError, method: str) -> ArkRelayError:
    """The ArkRelay exception for a failed tapd call (raise it ``from exc``)."""
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = (exc.details() if isinstance(exc, grpc.Call) else str(exc)) or code.name
    text = f"tapd {method}: {message}"
    if not answered(exc):
        return unavailable(f"tapd {method} unavailable: {code.name}: {message}")
    lowered = message.lower()
    if "macaroon" in lowered or code is grpc.StatusCode.UNAUTHENTICATED:
        return AssetBackendFailure(f"tapd {method} refused our macaroon: {message}")
    if method in _ASSET_METHODS and (
        code is grpc.StatusCode.NOT_FOUND or any(w in lowered for w in _UNKNOWN_ASSET_WORDS)
    ):
        return UnknownAsset(text)
    if method in _PAY_METHODS and "insufficient" not in lowered:
        return InvoiceInvalid(text)
    return AssetBackendFailure(text)
