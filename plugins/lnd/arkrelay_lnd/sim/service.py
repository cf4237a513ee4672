"""The simulator's gRPC servicers: lnd's Lightning, Invoices, Router and WalletKit services
over the pinned protos, one set per simulated node."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc
from embit.base import EmbitError
from embit.networks import NETWORKS
from embit.transaction import Transaction

from arkrelay_core.errors import InvoiceInvalid

from .. import bolt11codec
from .._proto import lightning_pb2, lightning_pb2_grpc
from .._proto.invoicesrpc import invoices_pb2, invoices_pb2_grpc
from .._proto.routerrpc import router_pb2_grpc
from .._proto.walletrpc import walletkit_pb2, walletkit_pb2_grpc
from .chain import Wallet, WalletError, WalletTx
from .network import SimError, SimInvoice, SimNetwork, SimNode, SimPayment, drain

__all__ = ["invoice_message", "payment_message", "servicers"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Idle seconds after which a stream checks whether its client is still there.
_IDLE = 1.0

VERSION = "0.21.2-beta commit=v0.21.2-beta (arkrelay simulator)"

#: 1 sat/vB, bitcoind's default minimum relay fee.
_MIN_RELAY_SAT_PER_KW = 250
_MAX_LABEL = 500
#: embit's script types -> lnrpc.OutputScriptType (nulldata and others by their bytes).
_SCRIPT_TYPES = {"p2pkh": 0, "p2sh": 1, "p2wpkh": 2, "p2wsh": 3, "p2tr": 9}
_NULLDATA, _NON_STANDARD = 6, 7


def _abort(context: grpc.ServicerContext, error: SimError) -> NoReturn:
    log.info("sim: %s: %s", error.status, error.message)
    context.abort(getattr(grpc.StatusCode, error.status), error.message)
    raise AssertionError("abort returned")  # it raises; this satisfies NoReturn


def _guard(context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except SimError as error:
        _abort(context, error)


def invoice_message(invoice: SimInvoice) -> lightning_pb2.Invoice:
    return lightning_pb2.Invoice(
        memo=invoice.memo,
        r_preimage=invoice.preimage or b"",
        r_hash=invoice.payment_hash,
        value=invoice.value_msat // 1000,
        value_msat=invoice.value_msat,
        settled=invoice.state == 1,
        creation_date=invoice.creation_date,
        settle_date=invoice.settle_date,
        payment_request=invoice.payment_request,
        expiry=invoice.expiry,
        cltv_expiry=80,
        add_index=invoice.add_index,
        settle_index=invoice.settle_index,
        amt_paid=invoice.amt_paid_msat // 1000,
        amt_paid_sat=invoice.amt_paid_msat // 1000,
        amt_paid_msat=invoice.amt_paid_msat,
        state=int(invoice.state),
        payment_addr=invoice.payment_addr,
    )


def payment_message(payment: SimPayment) -> lightning_pb2.Payment:
    return lightning_pb2.Payment(
        payment_hash=payment.payment_hash.hex(),
        payment_preimage=payment.preimage.hex() if payment.preimage else "",
        value_sat=payment.value_msat // 1000,
        value_msat=payment.value_msat,
        payment_request=payment.payment_request,
        status=int(payment.status),
        fee_sat=payment.fee_msat // 1000,
        fee_msat=payment.fee_msat,
        creation_time_ns=payment.creation_time_ns,
        payment_index=payment.payment_index,
        failure_reason=int(payment.failure),
    )


def _stream(
    context: grpc.ServicerContext,
    network: SimNetwork,
    node: SimNode,
    subscription: Any,
    backlog: list[Any],
    render: Callable[[Any], T],
) -> Iterator[T]:
    context.add_callback(lambda: network.unsubscribe(node, subscription))
    context.send_initial_metadata(())
    try:
        for item in backlog:
            yield render(item)
        for item in drain(subscription, _IDLE):
            if not context.is_active():
                return
            if item is not None:
                yield render(item)
    finally:
        network.unsubscribe(node, subscription)


class LightningServicer(lightning_pb2_grpc.LightningServicer):
    def __init__(self, network: SimNetwork, node: SimNode) -> None:
        self.network, self.node = network, node

    def GetInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        chain = self.network.chain
        return lightning_pb2.GetInfoResponse(
            version=VERSION,
            identity_pubkey=self.node.pubkey,
            alias=self.node.name,
            num_active_channels=len(self.network.nodes) - 1,
            num_peers=len(self.network.nodes) - 1,
            block_height=chain.height,
            block_hash=chain.tip_hash(),
            synced_to_chain=True,
            synced_to_graph=True,
            chains=[lightning_pb2.Chain(chain="bitcoin", network=self.network.network)],
            wallet_synced=True,
        )

    def WalletBalance(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.network.lock:
            confirmed, unconfirmed = self.node.wallet.balance()
        return lightning_pb2.WalletBalanceResponse(
            total_balance=confirmed + unconfirmed,
            confirmed_balance=confirmed,
            unconfirmed_balance=unconfirmed,
        )

    def GetTransactions(self, request: Any, context: grpc.ServicerContext) -> Any:
        wallet = self.node.wallet
        with self.network.lock:
            return lightning_pb2.TransactionDetails(
                transactions=[
                    _transaction(wallet, record, self.network.network)
                    for record in list(wallet.txs.values())
                ]
            )

    def AddInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.value and request.value_msat:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "value and value_msat are exclusive")
        amount = request.value_msat or request.value * 1000
        invoice = _guard(
            context,
            lambda: self.network.add_invoice(
                self.node, amount, memo=request.memo, expiry=request.expiry
            ),
        )
        return lightning_pb2.AddInvoiceResponse(
            r_hash=invoice.payment_hash,
            payment_request=invoice.payment_request,
            add_index=invoice.add_index,
            payment_addr=invoice.payment_addr,
        )

    def LookupInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        invoice = _guard(context, lambda: self.network.lookup_invoice(self.node, request.r_hash))
        return invoice_message(invoice)

    def SubscribeInvoices(self, request: Any, context: grpc.ServicerContext) -> Any:
        subscription, backlog = self.network.subscribe_invoices(
            self.node, request.add_index, request.settle_index
        )
        yield from _stream(context, self.network, self.node, subscription, backlog, invoice_message)

    def DecodePayReq(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            decoded = bolt11codec.decode(request.pay_req)
        except InvoiceInvalid as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        if decoded.network != self.network.network:
            context.abort(grpc.StatusCode.UNKNOWN, "invoice not for current active network")
        return lightning_pb2.PayReq(
            destination=decoded.destination,
            payment_hash=decoded.payment_hash,
            num_satoshis=decoded.amount_msat // 1000,
            timestamp=decoded.timestamp,
            expiry=decoded.expiry,
            description=decoded.description,
            cltv_expiry=80,
            num_msat=decoded.amount_msat,
        )


class InvoicesServicer(invoices_pb2_grpc.InvoicesServicer):
    def __init__(self, network: SimNetwork, node: SimNode) -> None:
        self.network, self.node = network, node

    def AddHoldInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        amount = request.value_msat or request.value * 1000
        invoice = _guard(
            context,
            lambda: self.network.add_invoice(
                self.node,
                amount,
                memo=request.memo,
                expiry=request.expiry,
                payment_hash=request.hash,
            ),
        )
        return invoices_pb2.AddHoldInvoiceResp(
            payment_request=invoice.payment_request,
            add_index=invoice.add_index,
            payment_addr=invoice.payment_addr,
        )

    def SettleInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        _guard(context, lambda: self.network.settle_invoice(self.node, request.preimage))
        return invoices_pb2.SettleInvoiceResp()

    def CancelInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        _guard(context, lambda: self.network.cancel_invoice(self.node, request.payment_hash))
        return invoices_pb2.CancelInvoiceResp()


class RouterServicer(router_pb2_grpc.RouterServicer):
    def __init__(self, network: SimNetwork, node: SimNode) -> None:
        self.network, self.node = network, node

    def SendPaymentV2(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.fee_limit_sat and request.fee_limit_msat:
            context.abort(grpc.StatusCode.UNKNOWN, "fee_limit_sat and fee_limit_msat exclusive")
        fee_limit = request.fee_limit_msat or request.fee_limit_sat * 1000
        subscription = _guard(
            context,
            lambda: self.network.pay(
                self.node,
                request.payment_request,
                fee_limit_msat=fee_limit,
                amount_msat=request.amt_msat or request.amt * 1000,
            ),
        )
        yield from _stream(context, self.network, self.node, subscription, [], payment_message)

    def TrackPaymentV2(self, request: Any, context: grpc.ServicerContext) -> Any:
        subscription = _guard(context, lambda: self.network.track(self.node, request.payment_hash))
        yield from _stream(context, self.network, self.node, subscription, [], payment_message)


class WalletKitServicer(walletkit_pb2_grpc.WalletKitServicer):
    def __init__(self, network: SimNetwork, node: SimNode) -> None:
        self.network, self.node = network, node

    def SendOutputs(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.sat_per_kw < _MIN_RELAY_SAT_PER_KW:
            # lnd builds it, then its backend refuses it (lnwallet.ErrMempoolFee).
            context.abort(
                grpc.StatusCode.UNKNOWN,
                "transaction rejected by the mempool because of low fees: min relay fee not met",
            )
        _check_label(context, request.label)
        try:
            with self.network.lock:
                tx = self.node.wallet.send_outputs(
                    [(o.value, o.pk_script) for o in request.outputs],
                    sat_per_vbyte=request.sat_per_kw / 250,
                    label=request.label,
                )
        except WalletError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        return walletkit_pb2.SendOutputsResponse(raw_tx=tx.raw)

    def PublishTransaction(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.tx_hex:
            context.abort(grpc.StatusCode.UNKNOWN, "must provide a transaction to publish")
        _check_label(context, request.label)
        try:
            Transaction.parse(request.tx_hex)
        except (RuntimeError, EmbitError) as exc:
            context.abort(grpc.StatusCode.UNKNOWN, f"unable to deserialize transaction: {exc}")
        try:
            with self.network.lock:
                self.node.wallet.publish(request.tx_hex, request.label)
        except WalletError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        return walletkit_pb2.PublishResponse()

    def BumpFee(self, request: Any, context: grpc.ServicerContext) -> Any:
        rate = _bump_rate(context, request)
        outpoint = _outpoint(context, request)
        try:
            with self.network.lock:
                _, existing = self.node.wallet.bump_fee(
                    outpoint, sat_per_vbyte=rate, budget=request.budget
                )
        except WalletError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        status = (
            "Successfully registered rbf-tx with sweeper"
            if existing
            else "Successfully registered CPFP-tx with the sweeper"
        )
        return walletkit_pb2.BumpFeeResponse(status=status)


def _check_label(context: grpc.ServicerContext, label: str) -> None:
    if len(label) > _MAX_LABEL:
        context.abort(grpc.StatusCode.UNKNOWN, f"label length: {len(label)} exceeds limit of 500")


def _outpoint(context: grpc.ServicerContext, request: Any) -> tuple[str, int]:
    """lnd's UnmarshallOutPoint: txid_bytes in internal (reversed) order, or txid_str."""
    if not request.HasField("outpoint"):
        context.abort(grpc.StatusCode.UNKNOWN, "empty outpoint provided")
    point = request.outpoint
    if point.txid_bytes:
        if len(point.txid_bytes) != 32:
            context.abort(grpc.StatusCode.UNKNOWN, "invalid hash length")
        return bytes(reversed(point.txid_bytes)).hex(), point.output_index
    if not point.txid_str:
        context.abort(grpc.StatusCode.UNKNOWN, "TxidBytes and TxidStr are both unspecified")
    try:
        txid = bytes.fromhex(point.txid_str)
    except ValueError:
        txid = b""
    if len(txid) != 32:
        context.abort(grpc.StatusCode.UNKNOWN, f"invalid hash string: {point.txid_str!r}")
    return txid.hex(), point.output_index


def _bump_rate(context: grpc.ServicerContext, request: Any) -> int:
    """The child's fee rate (sat/vB), with lnd's validateBumpFeeRequest refusals."""
    if request.sat_per_byte and request.sat_per_vbyte:
        context.abort(
            grpc.StatusCode.UNKNOWN, "either SatPerByte or SatPerVbyte should be set, but not both"
        )
    rate = request.sat_per_vbyte or request.sat_per_byte
    if request.target_conf and rate:
        context.abort(
            grpc.StatusCode.UNKNOWN,
            "either TargetConf or SatPerVbyte should be set, to specify the starting fee "
            "rate of the fee function",
        )
    if request.force and request.immediate:
        context.abort(
            grpc.StatusCode.UNKNOWN, "either Force or Immediate should be set, but not both"
        )
    if request.deadline_delta and not request.budget:
        context.abort(grpc.StatusCode.UNKNOWN, "budget must be set if deadline-delta is set")
    if not rate:
        # lnd would ask its fee estimator; the simulated chain has none.
        context.abort(
            grpc.StatusCode.UNKNOWN, "the simulator needs sat_per_vbyte (no fee estimator)"
        )
    return int(rate)


def _script_type(kind: str | None, script: bytes) -> int:
    if kind is not None:
        return _SCRIPT_TYPES[kind]
    return _NULLDATA if script[:1] == b"\x6a" else _NON_STANDARD


def _transaction(wallet: Wallet, record: WalletTx, network: str) -> Any:
    tx = record.tx
    params = NETWORKS.get(network, NETWORKS["regtest"])
    details = []
    for index, out in enumerate(tx.vout):
        script = out.script_pubkey
        kind = script.script_type()
        details.append(
            lightning_pb2.OutputDetail(
                output_type=_script_type(kind, script.data),
                address=script.address(params) if kind is not None else "",
                pk_script=script.data.hex(),
                output_index=index,
                amount=out.value,
                is_our_address=wallet.owns(script.data),
            )
        )
    ours = {c.outpoint for c in record.spends}
    return lightning_pb2.Transaction(
        tx_hash=record.txid,
        amount=record.amount,
        num_confirmations=wallet.confirmations(record.txid),
        block_hash=record.block_hash,
        block_height=record.block_height,
        time_stamp=record.created,
        total_fees=record.fee,
        output_details=details,
        raw_tx_hex=record.raw.hex(),
        label=record.label,
        previous_outpoints=[
            lightning_pb2.PreviousOutPoint(
                outpoint=f"{inp.txid.hex()}:{inp.vout}",
                is_our_output=(inp.txid.hex(), inp.vout) in ours,
            )
            for inp in tx.vin
        ],
    )


def servicers(network: SimNetwork, node: SimNode) -> list[tuple[Callable[..., None], Any]]:
    """(add_to_server function, servicer) pairs for one node."""
    return [
        (lightning_pb2_grpc.add_LightningServicer_to_server, LightningServicer(network, node)),
        (invoices_pb2_grpc.add_InvoicesServicer_to_server, InvoicesServicer(network, node)),
        (router_pb2_grpc.add_RouterServicer_to_server, RouterServicer(network, node)),
        (walletkit_pb2_grpc.add_WalletKitServicer_to_server, WalletKitServicer(network, node)),
    ]
