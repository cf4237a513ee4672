"""Payments, shared with the tapd plugin: following a payment stream (Router.SendPaymentV2
/ TrackPaymentV2, or tapd's asset payment stream carrying lnrpc.Payment updates) to a
verdict, where unknown is pending; and the double-pay guard."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

import grpc
import trio

from arkrelay_core.errors import InvoiceInvalid
from arkrelay_core.grpcutil import Caller, ErrorMapper, pump
from arkrelay_core.interfaces import Payment, PaymentStatus

from .convert import FINAL_PAYMENT_STATES, payment_from
from .errors import answered, map_rpc_error

__all__ = ["PaymentBook", "follow_payment"]

log = logging.getLogger(__name__)


async def follow_payment(
    caller: Caller,
    call: Any,
    method: str,
    payment_hash: str,
    wait: float,
    *,
    first: bool = False,
    payment_of: Callable[[Any], Any | None] = lambda item: item,
    map_error: ErrorMapper = map_rpc_error,
    refusal: Callable[[grpc.RpcError], bool] = answered,
) -> Payment:
    """Read ``call`` until a final payment state (or the first one, with ``first``).

    ``payment_of`` picks the lnrpc.Payment out of a stream item (None to skip it). No
    verdict within ``wait`` seconds, or a stream that breaks after the payment started, is
    PENDING; a refusal before any update raises ``map_error``'s exception. The breaker
    hears whether the daemon answered.
    """
    last: list[Any] = []

    async def seen(item: Any) -> None:
        update = payment_of(item)
        if update is None:
            return
        last.append(update)
        if first or update.status in FINAL_PAYMENT_STATES:
            scope.cancel()

    with trio.move_on_after(wait) as scope:
        try:
            await pump(call, seen)
        except grpc.RpcError as exc:
            if refusal(exc):
                caller.breaker.record_success()
                if not last:
                    raise map_error(exc, method) from exc
            else:
                caller.breaker.record_failure()
            log.warning("%s %s for %s broke: %s", caller.daemon, method, payment_hash, exc)
    if last:
        caller.breaker.record_success()
        return payment_from(last[-1])
    reason = "no verdict in time" if scope.cancelled_caught else "stream lost"
    return Payment(payment_hash, PaymentStatus.PENDING, failure_reason=reason)


class PaymentBook:
    """The payments one process made or is making, by hash: the double-pay guard.

    ``begin`` refuses (InvoiceInvalid) a hash being paid now or already paid, unless its
    last attempt definitely failed; it is called before any RPC. Bounded: the oldest
    entries are forgotten first (the daemon itself still refuses a paid hash).
    """

    def __init__(self, memory: int) -> None:
        self._memory = memory
        self._known: collections.OrderedDict[str, Payment] = collections.OrderedDict()
        self._sending: set[str] = set()

    def begin(self, payment_hash: str) -> None:
        known = self._known.get(payment_hash)
        if payment_hash in self._sending or (
            known is not None and known.status is not PaymentStatus.FAILED
        ):
            state = "in flight" if known is None else known.status.value
            raise InvoiceInvalid(f"payment {payment_hash} was already made ({state})")
        self._sending.add(payment_hash)

    def end(self, payment_hash: str, payment: Payment | None) -> None:
        """The attempt is over: ``payment`` is its outcome (None if nothing was sent)."""
        self._sending.discard(payment_hash)
        if payment is not None:
            self.record(payment_hash, payment)

    def sending(self, payment_hash: str) -> bool:
        return payment_hash in self._sending

    def knows(self, payment_hash: str) -> bool:
        return payment_hash in self._known

    def record(self, payment_hash: str, payment: Payment) -> None:
        self._known[payment_hash] = payment
        self._known.move_to_end(payment_hash)
        while len(self._known) > self._memory:
            self._known.popitem(last=False)

    def statistics(self) -> dict[str, int]:
        return {"payments_tracked": len(self._known), "payments_sending": len(self._sending)}
