"""Invoices and the state changes they drive, published to listeners and update streams."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable

from .. import bolt11codec
from .records import (
    Failure,
    InvoiceState,
    PayStatus,
    SimError,
    SimInvoice,
    SimNode,
    SimPayment,
)
from .streams import Subscription, close, publish

__all__ = ["InvoiceBook"]


class InvoiceBook:
    """Every node's invoices, and the settling, cancelling and payment outcomes they cause.

    The base of SimNetwork: payments route into these invoices, so both share one lock.
    """

    def __init__(self, *, network: str) -> None:
        self.network = network
        #: Guards every state change; servicers hold it to read the wallet consistently.
        self.lock = threading.RLock()
        #: Hold-invoice payments waiting for their invoice to settle or cancel.
        self._held: dict[bytes, tuple[SimNode, SimNode]] = {}
        #: Called (under the lock) with every invoice and payment update: other simulated
        #: daemons on this network (tapd) follow them.
        self.listeners: list[Callable[[SimNode, SimInvoice | SimPayment], None]] = []

    # ------------------------------------------------------------------ invoices

    def add_invoice(
        self,
        node: SimNode,
        amount_msat: int,
        *,
        memo: str = "",
        expiry: int = 86_400,
        payment_hash: bytes | None = None,
    ) -> SimInvoice:
        """A new invoice; with ``payment_hash`` a hold invoice (its preimage unknown)."""
        if amount_msat < 0:
            raise SimError("amount must not be negative", "INVALID_ARGUMENT")
        preimage = None
        if payment_hash is None:
            preimage = os.urandom(32)
            payment_hash = hashlib.sha256(preimage).digest()
        elif len(payment_hash) != 32:
            raise SimError("invalid hash length", "INVALID_ARGUMENT")
        with self.lock:
            if payment_hash in node.invoices:
                raise SimError("invoice with payment hash already exists", "ALREADY_EXISTS")
            now = int(time.time())
            payment_addr = os.urandom(32)
            node.add_index += 1
            invoice = SimInvoice(
                payment_hash=payment_hash,
                preimage=preimage,
                value_msat=amount_msat,
                memo=memo,
                payment_request=bolt11codec.encode(
                    network=self.network,
                    node_secret=node.secret,
                    payment_hash=payment_hash,
                    payment_secret=payment_addr,
                    amount_msat=amount_msat,
                    memo=memo,
                    timestamp=now,
                    expiry=expiry or 86_400,
                ),
                payment_addr=payment_addr,
                creation_date=now,
                expiry=expiry or 86_400,
                add_index=node.add_index,
                hold=preimage is None,
            )
            node.invoices[payment_hash] = invoice
            self._publish_invoice(node, invoice)
            return dataclasses.replace(invoice)

    def lookup_invoice(self, node: SimNode, payment_hash: bytes) -> SimInvoice:
        with self.lock:
            invoice = node.invoices.get(payment_hash)
            if invoice is None:
                raise SimError("unable to locate invoice", "NOT_FOUND")
            self._expire(node, invoice)
            return dataclasses.replace(invoice)

    def settle_invoice(self, node: SimNode, preimage: bytes) -> None:
        """Settle a held (ACCEPTED) hold invoice: its payer's payment succeeds."""
        payment_hash = hashlib.sha256(preimage).digest()
        with self.lock:
            invoice = node.invoices.get(payment_hash)
            if invoice is None:
                raise SimError("unable to locate invoice", "NOT_FOUND")
            if invoice.state is InvoiceState.SETTLED:
                return  # lnd treats settling a settled invoice as done
            if invoice.state is not InvoiceState.ACCEPTED:
                raise SimError(f"invoice still {invoice.state.name.lower()}", "UNKNOWN")
            invoice.preimage = preimage
            self._settle(node, invoice)
            held = self._held.pop(payment_hash, None)
            if held is not None:
                payer, _ = held
                self._finish(payer, payer.payments[payment_hash], PayStatus.SUCCEEDED, preimage)

    def cancel_invoice(self, node: SimNode, payment_hash: bytes) -> None:
        with self.lock:
            invoice = node.invoices.get(payment_hash)
            if invoice is None:
                raise SimError("unable to locate invoice", "NOT_FOUND")
            if invoice.state is InvoiceState.SETTLED:
                raise SimError("invoice already settled", "UNKNOWN")
            if invoice.state is InvoiceState.CANCELED:
                return
            self._cancel(node, invoice)

    def subscribe_invoices(
        self, node: SimNode, add_index: int, settle_index: int
    ) -> tuple[Subscription, list[SimInvoice]]:
        """A live subscription plus lnd's backlog: invoices added after ``add_index`` (when
        it is not 0) and settled after ``settle_index`` (when not 0), in index order."""
        with self.lock:
            subscription = Subscription()
            node._invoice_streams.append(subscription)
            backlog: list[SimInvoice] = []
            invoices = list(node.invoices.values())
            if add_index:
                backlog += sorted(
                    (i for i in invoices if i.add_index > add_index), key=lambda i: i.add_index
                )
            if settle_index:
                backlog += sorted(
                    (i for i in invoices if i.settle_index > settle_index),
                    key=lambda i: i.settle_index,
                )
            return subscription, [dataclasses.replace(i) for i in backlog]

    def unsubscribe(self, node: SimNode, subscription: Subscription) -> None:
        with self.lock:
            subscription.closed = True
            if subscription in node._invoice_streams:
                node._invoice_streams.remove(subscription)
            for streams in node._payment_streams.values():
                if subscription in streams:
                    streams.remove(subscription)

    def close_streams(self, node: SimNode) -> None:
        """End every open stream of ``node`` (its server is going down)."""
        with self.lock:
            subs = list(node._invoice_streams)
            for streams in node._payment_streams.values():
                subs += streams
            node._invoice_streams.clear()
            node._payment_streams.clear()
        for subscription in subs:
            close(subscription)

    # ------------------------------------------------------------------ state changes

    def _finish(
        self,
        payer: SimNode,
        payment: SimPayment,
        status: PayStatus,
        preimage: bytes = b"",
        failure: Failure = Failure.NONE,
    ) -> None:
        if status is PayStatus.FAILED and payment.fee_msat:
            payer.balance_msat += payment.value_msat + payment.fee_msat  # HTLC came back
            payment.fee_msat = 0
        payment.status, payment.preimage, payment.failure = status, preimage, failure
        self._publish_payment(payer, payment)

    def _settle(self, node: SimNode, invoice: SimInvoice) -> None:
        node.settle_index += 1
        invoice.state = InvoiceState.SETTLED
        invoice.settle_index = node.settle_index
        invoice.settle_date = int(time.time())
        self._publish_invoice(node, invoice)

    def _cancel(self, node: SimNode, invoice: SimInvoice) -> None:
        invoice.state = InvoiceState.CANCELED
        self._publish_invoice(node, invoice)
        held = self._held.pop(invoice.payment_hash, None)
        if held is not None:
            payer, dest = held
            dest.balance_msat -= invoice.amt_paid_msat
            invoice.amt_paid_msat = 0
            self._finish(
                payer,
                payer.payments[invoice.payment_hash],
                PayStatus.FAILED,
                failure=Failure.INCORRECT_PAYMENT_DETAILS,
            )

    def _expire(self, node: SimNode, invoice: SimInvoice) -> None:
        if (
            invoice.state is InvoiceState.OPEN
            and invoice.creation_date + invoice.expiry <= time.time()
        ):
            self._cancel(node, invoice)

    def _watch(self, payer: SimNode, payment: SimPayment) -> Subscription:
        subscription = Subscription()
        subscription.updates.put_nowait(dataclasses.replace(payment))
        payer._payment_streams.setdefault(payment.payment_hash, []).append(subscription)
        return subscription

    def _publish_invoice(self, node: SimNode, invoice: SimInvoice) -> None:
        for listener in self.listeners:
            listener(node, invoice)
        publish(node._invoice_streams, lambda: dataclasses.replace(invoice))

    def _publish_payment(self, payer: SimNode, payment: SimPayment) -> None:
        for listener in self.listeners:
            listener(payer, payment)
        streams = payer._payment_streams.get(payment.payment_hash, [])
        publish(streams, lambda: dataclasses.replace(payment))
        if payment.status is not PayStatus.IN_FLIGHT:
            payer._payment_streams.pop(payment.payment_hash, None)
            for subscription in streams:
                close(subscription)
