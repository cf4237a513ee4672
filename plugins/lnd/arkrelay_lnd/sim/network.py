"""A small simulated Lightning network: nodes with invoices, payments, an on-chain wallet,
and failure modes switched on per node.

Channels are not modelled: any two online nodes can pay each other, for a fee of
``fee_base_msat + amount * fee_ppm / 1e6``, out of the payer's Lightning balance. Invoice
and payment states, their numbering and what lnd refuses follow lnd v0.21.2 (the numbers
are lnrpc's enum values). All methods are thread-safe: gRPC servicers call them from the
server's worker threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator

import coincurve

from arkrelay_core.errors import InvoiceInvalid

from .. import bolt11codec
from .chain import Chain, Wallet

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

#: Updates a stream may fall behind by before the simulator drops it (as lnd does with a
#: slow subscriber, the client then reconnects and catches up by index).
_QUEUE_SIZE = 1024


class InvoiceState(enum.IntEnum):
    OPEN = 0
    SETTLED = 1
    CANCELED = 2
    ACCEPTED = 3


class PayStatus(enum.IntEnum):
    IN_FLIGHT = 1
    SUCCEEDED = 2
    FAILED = 3


class Failure(enum.IntEnum):
    NONE = 0
    TIMEOUT = 1
    NO_ROUTE = 2
    ERROR = 3
    INCORRECT_PAYMENT_DETAILS = 4
    INSUFFICIENT_BALANCE = 5
    CANCELED = 6


class SimError(Exception):
    """A refusal, sent as a gRPC status: ``status`` names a grpc.StatusCode member."""

    def __init__(self, message: str, status: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass
class SimInvoice:
    payment_hash: bytes
    preimage: bytes | None
    value_msat: int
    memo: str
    payment_request: str
    payment_addr: bytes
    creation_date: int
    expiry: int
    add_index: int
    hold: bool
    state: InvoiceState = InvoiceState.OPEN
    settle_index: int = 0
    settle_date: int = 0
    amt_paid_msat: int = 0


@dataclasses.dataclass
class SimPayment:
    payment_hash: bytes
    payment_request: str
    value_msat: int
    fee_msat: int
    payment_index: int
    creation_time_ns: int
    status: PayStatus = PayStatus.IN_FLIGHT
    preimage: bytes = b""
    failure: Failure = Failure.NONE


@dataclasses.dataclass
class _Subscription:
    updates: queue.Queue[SimInvoice | SimPayment | None]
    closed: bool = False


class SimNode:
    """One node: its key, invoices, outgoing payments, balance, wallet and failure modes."""

    def __init__(
        self, network: SimNetwork, name: str, *, balance_msat: int, onchain_sat: int
    ) -> None:
        self.network = network
        self.name = name
        self.secret = os.urandom(32)
        self.pubkey = coincurve.PrivateKey(self.secret).public_key.format().hex()
        #: The macaroon lnd would have baked; callers send it hex-encoded.
        self.macaroon = b"arkrelay-sim-macaroon:" + os.urandom(16)
        self.balance_msat = balance_msat
        self.wallet = Wallet(network.chain, os.urandom(32), funds=onchain_sat)
        self.invoices: dict[bytes, SimInvoice] = {}
        self.payments: dict[bytes, SimPayment] = {}
        self.add_index = 0
        self.settle_index = 0
        self.payment_index = 0
        #: Whether its gRPC server is up (set by the server); offline nodes cannot be paid.
        self.online = False
        #: Failure modes: outgoing payments find no route / hang in flight until released.
        self.no_route = False
        self.stuck = False
        self._invoice_streams: list[_Subscription] = []
        self._payment_streams: dict[bytes, list[_Subscription]] = {}

    @property
    def macaroon_hex(self) -> str:
        return self.macaroon.hex()


class SimNetwork:
    """The nodes, the chain, and every state change between them."""

    def __init__(
        self, *, network: str = "regtest", fee_base_msat: int = 1_000, fee_ppm: int = 1_000
    ) -> None:
        self.network = network
        self.fee_base_msat = fee_base_msat
        self.fee_ppm = fee_ppm
        self.chain = Chain()
        self.nodes: dict[str, SimNode] = {}
        #: Guards every state change; servicers hold it to read the wallet consistently.
        self.lock = threading.RLock()
        #: Hold-invoice payments waiting for their invoice to settle or cancel.
        self._held: dict[bytes, tuple[SimNode, SimNode]] = {}
        #: Called (under the lock) with every invoice and payment update: other simulated
        #: daemons on this network (tapd) follow them.
        self.listeners: list[Callable[[SimNode, SimInvoice | SimPayment], None]] = []

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
    ) -> tuple[_Subscription, list[SimInvoice]]:
        """A live subscription plus lnd's backlog: invoices added after ``add_index`` (when
        it is not 0) and settled after ``settle_index`` (when not 0), in index order."""
        with self.lock:
            subscription = _Subscription(queue.Queue(_QUEUE_SIZE))
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

    def unsubscribe(self, node: SimNode, subscription: _Subscription) -> None:
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
            _close(subscription)

    # ------------------------------------------------------------------ payments

    def pay(
        self,
        payer: SimNode,
        payment_request: str,
        *,
        fee_limit_msat: int,
        amount_msat: int = 0,
    ) -> _Subscription:
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

    def track(self, payer: SimNode, payment_hash: bytes) -> _Subscription:
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

    # ------------------------------------------------------------------ state changes

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

    def _watch(self, payer: SimNode, payment: SimPayment) -> _Subscription:
        subscription = _Subscription(queue.Queue(_QUEUE_SIZE))
        subscription.updates.put_nowait(dataclasses.replace(payment))
        payer._payment_streams.setdefault(payment.payment_hash, []).append(subscription)
        return subscription

    def _publish_invoice(self, node: SimNode, invoice: SimInvoice) -> None:
        for listener in self.listeners:
            listener(node, invoice)
        self._publish(node._invoice_streams, lambda: dataclasses.replace(invoice))

    def _publish_payment(self, payer: SimNode, payment: SimPayment) -> None:
        for listener in self.listeners:
            listener(payer, payment)
        streams = payer._payment_streams.get(payment.payment_hash, [])
        self._publish(streams, lambda: dataclasses.replace(payment))
        if payment.status is not PayStatus.IN_FLIGHT:
            payer._payment_streams.pop(payment.payment_hash, None)
            for subscription in streams:
                _close(subscription)

    @staticmethod
    def _publish(
        streams: list[_Subscription], snapshot: Callable[[], SimInvoice | SimPayment]
    ) -> None:
        for subscription in list(streams):
            try:
                subscription.updates.put_nowait(snapshot())
            except queue.Full:
                log.warning("sim: dropping a stream that fell %d updates behind", _QUEUE_SIZE)
                streams.remove(subscription)
                _close(subscription)


def _close(subscription: _Subscription) -> None:
    subscription.closed = True
    with contextlib.suppress(queue.Full):
        subscription.updates.put_nowait(None)


def drain(subscription: _Subscription, timeout: float) -> Iterator[SimInvoice | SimPayment | None]:
    """Updates as they come; ``None`` after ``timeout`` idle seconds (a heartbeat chance),
    until the subscription is closed."""
    while True:
        try:
            item = subscription.updates.get(timeout=timeout)
        except queue.Empty:
            if subscription.closed:
                return
            yield None
            continue
        if item is None:
            return
        yield item
