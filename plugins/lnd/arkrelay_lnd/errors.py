"""lnd's gRPC errors -> ArkRelay's exception tree (and PROTOCOL.md codes).

lnd answers most refusals with status UNKNOWN and a message; what decides is which call
refused and whether lnd answered at all:

    call could not reach lnd (UNAVAILABLE, DEADLINE_EXCEEDED, ...)  -> BackendUnavailable (5005)
    refusal of an invoice call (decode, pay, lookup, hold/settle/cancel) -> InvoiceInvalid (5003)
    a refused macaroon, any other refusal                            -> BackendError (9001)

PROTOCOL.md has no "Lightning unavailable" code; 5005 ("backend circuit open, try later")
is the wallet-facing meaning of an unreachable lnd, and the breaker's own CircuitOpen
follows. A payment that lnd reports failed is not an exception: it is returned as
``Payment(status=FAILED)`` (and PaymentFailed, 5002, is the core's to send).
"""

from __future__ import annotations

import grpc

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import ArkRelayError, BackendError, BackendUnavailable, InvoiceInvalid

__all__ = ["INVOICE_METHODS", "answered", "map_rpc_error", "unavailable"]

#: Calls whose refusal means the invoice (or payment request, or hash) is the problem.
INVOICE_METHODS = frozenset(
    {
        "DecodePayReq",
        "SendPaymentV2",
        "LookupInvoice",
        "AddInvoice",
        "AddHoldInvoice",
        "SettleInvoice",
        "CancelInvoice",
    }
)

#: Codes meaning the call did not get an answer from lnd. Unlike most daemons lnd sends
#: its own refusals as UNKNOWN, so UNKNOWN is an answer here.
_UNREACHED = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
    }
)
_DENIED = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
_DENIED_WORDS = ("macaroon", "permission denied", "verification failed")


def answered(exc: grpc.RpcError) -> bool:
    """Whether lnd itself answered (a refusal) rather than the call failing."""
    return isinstance(exc, grpc.Call) and exc.code() not in _UNREACHED


def unavailable(message: str) -> BackendUnavailable:
    return BackendUnavailable(message, code=ErrorCode.CIRCUIT_OPEN)


def map_rpc_error(exc: grpc.RpcError, method: str) -> ArkRelayError:
    """The ArkRelay exception for a failed lnd call (raise it ``from exc``)."""
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = (exc.details() if isinstance(exc, grpc.Call) else str(exc)) or code.name
    if not answered(exc):
        return unavailable(f"lnd {method} unavailable: {code.name}: {message}")
    if code in _DENIED or any(word in message.lower() for word in _DENIED_WORDS):
        # Our credentials, not the invoice: the operator must fix the macaroon.
        return BackendError(
            f"lnd {method} refused our macaroon: {message}", code=ErrorCode.INTERNAL
        )
    if method in INVOICE_METHODS:
        return InvoiceInvalid(f"lnd {method}: {message}")
    return BackendError(f"lnd {method}: {code.name}: {message}", code=ErrorCode.INTERNAL)
