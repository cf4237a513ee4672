"""A small simulated Lightning network: nodes with invoices, payments, an on-chain wallet,
and failure modes switched on per node.

Channels are not modelled: any two online nodes can pay each other, for a fee of
``fee_base_msat + amount * fee_ppm / 1e6``, out of the payer's Lightning balance. Invoice
and payment states, their numbering and what lnd refuses follow lnd v0.21.2 (the numbers
are lnrpc's enum values). All methods are thread-safe: gRPC servicers call them from the
server's worker threads.
"""

from __future__ import annotations

import logging
import threading
import time

from arkrelay_core.errors import InvoiceInvalid

from .. import bolt11codec
from .chain import Chain
from .invoices import InvoiceBook
from .records import (
    Failure,
    InvoiceState,
    PayStatus,
    SimError,
    SimInvoice,
    SimNode,
    SimPayment,
)
from .streams import Subscription, drain

__all__ = [
    "Failure",
    "InvoiceState",
    "PayStatus",
    "SimError",
    "SimInvoice",
    "SimNetwork",
    "SimNode",
    "SimPayment",
    "drain",
]

log = logging.getLogger(__name__)

_SHARED: dict[str, SimNetwork] = {}
_SHARED_LOCK = threading.Lock()


class SimNetwork(InvoiceBook):
    """The nodes, the chain, and every state change between them."""

    def __init__(
        self, *, network: str = "regtest", fee_base_msat: int = 1_000, fee_ppm: int = 1_000
    ) -> None:
        super().__init__(network=network)
        self.fee_base_msat = fee_base_msat
        self.fee_ppm = fee_ppm
        self.chain = Chain()
        self.nodes: dict[str, SimNode] = {}

    @classmethod
    def shared(cls, key: str) -> SimNetwork:
        """The process-wide network named ``key``: a dev gateway's embedded lnd and tapd
        simulators find the same network through their data dir."""
        with _SHARED_LOCK:
            network = _SHARED.get(key)
            if network is None:
                network = _SHARED[key] = cls()
            return network

    # ------------------------------------------------------------------ nodes and chain

    def add_node(
        self, name: str, *, balance_msat: int = 10**11, onchain_sat: int = 10_000_000
    ) -> SimNode:
        with self.lock:
            if name in self.nodes:
                raise ValueError(f"node {name!r} exists")
            node = SimNode(self, name, balance_msat=balance_msat, onchain_sat=onchain_sat)
            self.nodes[name] = node
            return node

    def node_by_pubkey(self, pubkey: str) -> SimNode | None:
        return next((n for n in self.nodes.values() if n.pubkey == pubkey), None)

    def mine(self, blocks: int = 1) -> list[str]:
        with self.lock:
            return self.chain.mine(blocks)

    def fee_msat(self, amount_msat: int) -> int:
        return self.fee_base_msat + amount_msat * self.fee_ppm // 1_000_000

    # ------------------------------------------------------------------ payments

    def pay(
        self,
        payer: SimNode,
        payment_request: str,
        *,
        fee_limit_msat: int,
        amount_msat: int = 0,
    ) -> Subscription:
        """Start paying; returns a subscription whose first update is the new payment."""
        try:
            decoded = bolt11codec.decode(payment_request)
        except InvoiceInvalid as exc:
            raise SimError(f"invalid payment request: {exc}", "INVALID_ARGUMENT") from exc
        if decoded.network != self.network:
            raise SimError("invoice not for current active network", "INVALID_ARGUMENT")
        if decoded.expires_at <= time.time():
            raise SimError("invoice expired", "INVALID_ARGUMENT")
        if decoded.destination == payer.pubkey:
            raise SimError("no self-payments allowed", "INVALID_ARGUMENT")
        amount = decoded.amount_msat or amount_msat
        if amount <= 0:
            raise SimError("amount must be specified when paying a zero amount invoice")
        payment_hash = bytes.fromhex(decoded.payment_hash)
        with self.lock:
            previous = payer.payments.get(payment_hash)
            if previous is not None and previous.status is PayStatus.SUCCEEDED:
                raise SimError("invoice is already paid", "ALREADY_EXISTS")
            if previous is not None and previous.status is PayStatus.IN_FLIGHT:
                raise SimError("payment is in transition", "ALREADY_EXISTS")
            payer.payment_index += 1
            payment = SimPayment(
                payment_hash=payment_hash,
                payment_request=payment_request,
                value_msat=amount,
                fee_msat=0,
                payment_index=payer.payment_index,
                creation_time_ns=time.time_ns(),
            )
            payer.payments[payment_hash] = payment
            subscription = self._watch(payer, payment)
            if payer.stuck:
                log.info("sim %s: payment %s stuck in flight", payer.name, payment_hash.hex())
            else:
                self._route(payer, payment, decoded.destination, fee_limit_msat)
            return subscription

    def track(self, payer: SimNode, payment_hash: bytes) -> Subscription:
        with self.lock:
            payment = payer.payments.get(payment_hash)
            if payment is None:
                raise SimError("payment isn't initiated", "NOT_FOUND")
            return self._watch(payer, payment)

    def release(self, payer: SimNode, payment_hash: bytes, *, succeed: bool) -> None:
        """Resolve a payment stuck in flight: route it now, or fail it (timeout)."""
        with self.lock:
            payment = payer.payments[payment_hash]
            if payment.status is not PayStatus.IN_FLIGHT or payment_hash in self._held:
                raise ValueError("that payment is not stuck")
            if succeed:
                decoded = bolt11codec.decode(payment.payment_request)
                self._route(payer, payment, decoded.destination, fee_limit_msat=None)
            else:
                self._finish(payer, payment, PayStatus.FAILED, failure=Failure.TIMEOUT)

    def _route(
        self, payer: SimNode, payment: SimPayment, destination: str, fee_limit_msat: int | None
    ) -> None:
        dest = self.node_by_pubkey(destination)
        fee = self.fee_msat(payment.value_msat)
        if dest is None or not dest.online or payer.no_route or dest.no_route:
            return self._finish(payer, payment, PayStatus.FAILED, failure=Failure.NO_ROUTE)
        if fee_limit_msat is not None and fee > fee_limit_msat:
            return self._finish(payer, payment, PayStatus.FAILED, failure=Failure.NO_ROUTE)
        if payer.balance_msat < payment.value_msat + fee:
            return self._finish(
                payer, payment, PayStatus.FAILED, failure=Failure.INSUFFICIENT_BALANCE
            )
        invoice = dest.invoices.get(payment.payment_hash)
        if invoice is not None:
            self._expire(dest, invoice)
        if (
            invoice is None
            or invoice.state is not InvoiceState.OPEN
            or payment.value_msat < invoice.value_msat
        ):
            return self._finish(
                payer, payment, PayStatus.FAILED, failure=Failure.INCORRECT_PAYMENT_DETAILS
            )
        payment.fee_msat = fee
        payer.balance_msat -= payment.value_msat + fee
        dest.balance_msat += payment.value_msat
        invoice.amt_paid_msat = payment.value_msat
        if invoice.hold:
            invoice.state = InvoiceState.ACCEPTED
            self._held[payment.payment_hash] = (payer, dest)
            self._publish_invoice(dest, invoice)
            self._publish_payment(payer, payment)  # in flight, with its fee now known
            return None
        self._settle(dest, invoice)
        assert invoice.preimage is not None
        return self._finish(payer, payment, PayStatus.SUCCEEDED, invoice.preimage)
