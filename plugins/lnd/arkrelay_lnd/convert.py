"""lnrpc messages -> the LightningBackend's types, with lnd's enum numbers."""

from __future__ import annotations

from typing import Any

from arkrelay_core.interfaces import Invoice, InvoiceState, Payment, PaymentStatus

__all__ = ["FINAL_PAYMENT_STATES", "invoice_from", "payment_from"]

_INVOICE_STATES = {
    0: InvoiceState.OPEN,
    1: InvoiceState.SETTLED,
    2: InvoiceState.CANCELED,
    3: InvoiceState.ACCEPTED,
}
#: lnrpc.Payment.PaymentStatus: SUCCEEDED=2, FAILED=3. IN_FLIGHT=1, INITIATED=4 and the
#: deprecated UNKNOWN=0 are all "pending": unknown is pending.
FINAL_PAYMENT_STATES = frozenset({2, 3})
_FAILURE_REASONS = {
    0: "none",
    1: "timeout",
    2: "no_route",
    3: "error",
    4: "incorrect_payment_details",
    5: "insufficient_balance",
    6: "canceled",
}


def invoice_from(message: Any) -> Invoice:
    return Invoice(
        payment_hash=message.r_hash.hex(),
        bolt11=message.payment_request,
        amount_msat=message.value_msat,
        state=_INVOICE_STATES[message.state],
        expires_at=message.creation_date + message.expiry,
        memo=message.memo,
        amount_paid_msat=message.amt_paid_msat,
        add_index=message.add_index,
        settle_index=message.settle_index,
    )


def payment_from(message: Any) -> Payment:
    if message.status == 2:
        return Payment(
            payment_hash=message.payment_hash,
            status=PaymentStatus.SUCCEEDED,
            amount_msat=message.value_msat,
            fee_msat=message.fee_msat,
            preimage=message.payment_preimage,
        )
    if message.status == 3:
        return Payment(
            payment_hash=message.payment_hash,
            status=PaymentStatus.FAILED,
            amount_msat=message.value_msat,
            failure_reason=_FAILURE_REASONS.get(message.failure_reason, "unknown"),
        )
    return Payment(
        payment_hash=message.payment_hash,
        status=PaymentStatus.PENDING,
        amount_msat=message.value_msat,
        fee_msat=message.fee_msat,
    )
