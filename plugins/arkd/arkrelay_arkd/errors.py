"""arkd's gRPC errors -> ArkRelay's exception tree (and PROTOCOL.md codes).

arkd puts an ``ark.v1.ErrorDetails`` (code, name, message, metadata) in the status details
of every error it raises on purpose; the name decides. Without details, the gRPC code does.

    name                                           -> exception (code)
    VTXO_ALREADY_SPENT / _REGISTERED / _UNROLLED   -> VtxoAlreadySpent (2002)
    VTXO_RECOVERABLE (swept or expired)            -> VtxoExpired (2004)
    VTXO_NOT_FOUND                                 -> VtxoNotOwned (2003): nobody owns it
    INVALID_SIGNATURE, ARK_TX_INPUT_NOT_SIGNED,
    INVALID_INTENT_PROOF                           -> ProtocolViolation (3003)
    any other refusal (INVALID_*, *_MISMATCH, ...) -> BackendError (9001): we built it wrong
    UNAVAILABLE, DEADLINE_EXCEEDED, transport      -> BackendUnavailable (5001)
"""

from __future__ import annotations

import dataclasses
import logging

import grpc
from grpc_status import rpc_status

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import (
    ArkRelayError,
    BackendError,
    BackendUnavailable,
    ProtocolViolation,
    VtxoAlreadySpent,
    VtxoExpired,
    VtxoNotOwned,
)
from arkrelay_core.grpcutil import is_transient

from ._proto.ark.v1 import types_pb2

__all__ = ["ArkdErrorInfo", "error_info", "map_rpc_error"]

log = logging.getLogger(__name__)

_BY_NAME: dict[str, type[ArkRelayError]] = {
    "VTXO_ALREADY_SPENT": VtxoAlreadySpent,
    "VTXO_ALREADY_REGISTERED": VtxoAlreadySpent,
    "VTXO_ALREADY_UNROLLED": VtxoAlreadySpent,
    "VTXO_RECOVERABLE": VtxoExpired,
    "VTXO_NOT_FOUND": VtxoNotOwned,
}
#: INVALID_INTENT_PROOF: arkd refused an owner's ownership proof (a bad owner signature).
_SIGNATURE_NAMES = frozenset(
    {"INVALID_SIGNATURE", "ARK_TX_INPUT_NOT_SIGNED", "INVALID_INTENT_PROOF"}
)


@dataclasses.dataclass(frozen=True)
class ArkdErrorInfo:
    """What a failed call said: its gRPC code and arkd's structured details, if any."""

    code: grpc.StatusCode
    message: str
    name: str = ""
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)


def error_info(exc: grpc.RpcError) -> ArkdErrorInfo:
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = (exc.details() if isinstance(exc, grpc.Call) else str(exc)) or ""
    status = None
    if isinstance(exc, grpc.Call):
        try:
            status = rpc_status.from_call(exc)
        except ValueError:
            # The details' code or message contradict the status line: ignore the details.
            status = None
    if status is not None:
        for detail in status.details:
            if detail.Is(types_pb2.ErrorDetails.DESCRIPTOR):
                details = types_pb2.ErrorDetails()
                detail.Unpack(details)
                return ArkdErrorInfo(
                    code, details.message or message, details.name, dict(details.metadata)
                )
    return ArkdErrorInfo(code, message)


def map_rpc_error(exc: grpc.RpcError, method: str) -> ArkRelayError:
    """The ArkRelay exception for a failed arkd call (raise it ``from exc``)."""
    info = error_info(exc)
    text = f"arkd {method}: {info.name + ': ' if info.name else ''}{info.message}"
    if info.name in _BY_NAME:
        return _BY_NAME[info.name](text)
    if info.name in _SIGNATURE_NAMES:
        return ProtocolViolation(text, code=ErrorCode.INVALID_SIGNING_RESPONSE)
    if is_transient(exc, idempotent=True) or info.code is grpc.StatusCode.CANCELLED:
        return BackendUnavailable(f"arkd {method} unavailable: {info.code.name}: {info.message}")
    log.debug("arkd %s refused: %s %s", method, info.code.name, info.name)
    return BackendError(text, code=ErrorCode.INTERNAL)
