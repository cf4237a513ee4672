"""The simulator's refusals, shaped like arkd's (pkg/errors at v0.9.15).

Each carries arkd's numeric code, name and gRPC status code; the servicer sends them as a
gRPC status whose details hold an ``ark.v1.ErrorDetails``, as arkd's error interceptor does.
"""

from __future__ import annotations

import dataclasses

import grpc

__all__ = ["ArkdError", "code"]


@dataclasses.dataclass(frozen=True)
class _Code:
    number: int
    name: str
    status: grpc.StatusCode

    def __call__(self, message: str, /, **metadata: str) -> ArkdError:
        return ArkdError(self, message, dict(metadata))


class ArkdError(Exception):
    def __init__(self, kind: _Code, message: str, metadata: dict[str, str]) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.metadata = metadata


_INVALID = grpc.StatusCode.INVALID_ARGUMENT


class code:
    INTERNAL_ERROR = _Code(0, "INTERNAL_ERROR", grpc.StatusCode.INTERNAL)
    INVALID_ARK_PSBT = _Code(1, "INVALID_ARK_PSBT", _INVALID)
    INVALID_CHECKPOINT_PSBT = _Code(2, "INVALID_CHECKPOINT_PSBT", _INVALID)
    INVALID_PSBT_MISSING_INPUT = _Code(3, "INVALID_PSBT_MISSING_INPUT", _INVALID)
    VTXO_ALREADY_REGISTERED = _Code(4, "VTXO_ALREADY_REGISTERED", grpc.StatusCode.ALREADY_EXISTS)
    INVALID_PSBT_INPUT = _Code(5, "INVALID_PSBT_INPUT", _INVALID)
    VTXO_ALREADY_SPENT = _Code(6, "VTXO_ALREADY_SPENT", _INVALID)
    VTXO_RECOVERABLE = _Code(8, "VTXO_RECOVERABLE", _INVALID)
    INVALID_VTXO_SCRIPT = _Code(10, "INVALID_VTXO_SCRIPT", _INVALID)
    ARK_TX_INPUT_NOT_SIGNED = _Code(12, "ARK_TX_INPUT_NOT_SIGNED", _INVALID)
    MALFORMED_ARK_TX = _Code(13, "MALFORMED_ARK_TX", _INVALID)
    AMOUNT_TOO_HIGH = _Code(14, "AMOUNT_TOO_HIGH", _INVALID)
    AMOUNT_TOO_LOW = _Code(15, "AMOUNT_TOO_LOW", _INVALID)
    CHECKPOINT_MISMATCH = _Code(16, "CHECKPOINT_MISMATCH", _INVALID)
    ARK_TX_MISMATCH = _Code(17, "ARK_TX_MISMATCH", _INVALID)
    INVALID_SIGNATURE = _Code(18, "INVALID_SIGNATURE", _INVALID)
    TX_NOT_FOUND = _Code(19, "TX_NOT_FOUND", grpc.StatusCode.NOT_FOUND)
    INVALID_INTENT_TIMERANGE = _Code(20, "INVALID_INTENT_TIMERANGE", _INVALID)
    INVALID_INTENT_MESSAGE = _Code(21, "INVALID_INTENT_MESSAGE", _INVALID)
    INVALID_INTENT_PSBT = _Code(22, "INVALID_INTENT_PSBT", _INVALID)
    INVALID_INTENT_PROOF = _Code(23, "INVALID_INTENT_PROOF", _INVALID)
    INVALID_PKSCRIPT = _Code(24, "INVALID_PKSCRIPT", _INVALID)
    CONFIRMATION_SESSION_NOT_STARTED = _Code(25, "CONFIRMATION_SESSION_NOT_STARTED", _INVALID)
    INVALID_FORFEIT_TXS = _Code(26, "INVALID_FORFEIT_TXS", _INVALID)
    INVALID_BOARDING_INPUT_SIG = _Code(27, "INVALID_BOARDING_INPUT_SIG", _INVALID)
    SIGNING_SESSION_TIMED_OUT = _Code(28, "SIGNING_SESSION_TIMED_OUT", grpc.StatusCode.INTERNAL)
    VTXO_NOT_FOUND = _Code(30, "VTXO_NOT_FOUND", grpc.StatusCode.NOT_FOUND)
    INTENT_INSUFFICIENT_FEE = _Code(31, "INTENT_INSUFFICIENT_FEE", _INVALID)
    INTENT_NOT_FOUND = _Code(45, "INTENT_NOT_FOUND", grpc.StatusCode.NOT_FOUND)
