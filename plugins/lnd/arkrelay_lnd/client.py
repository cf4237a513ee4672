"""LndBackend: the LightningBackend of arkrelay_core, over lnd's gRPC API (or the
simulator's).

Invoices (plain and hold) go through Lightning and Invoices, payments through Router
(SendPaymentV2 / TrackPaymentV2), commitments through WalletKit.SendOutputs (found again
with GetTransactions, fee-bumped with WalletKit.BumpFee, published again with
WalletKit.PublishTransaction). The invoice stream resumes from the last add and settle
index it saw and, after a reconnect, looks up the unfinished invoices this backend
created: ACCEPTED has no index to resume from, and lnd sends no settle backlog for settle
index 0, so neither a held payment nor a first settlement is missed.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
import trio
from embit.base import EmbitError
from embit.transaction import Transaction

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import BackendError, BackendUnavailable, CircuitOpen, InvoiceInvalid
from arkrelay_core.grpcutil import Backoff, pump
from arkrelay_core.interfaces import (
    DecodedInvoice,
    Invoice,
    InvoiceState,
    LightningInfo,
    OnchainBalance,
    OnchainTx,
    Payment,
    PaymentStatus,
    PluginContext,
    TxConfirmation,
)

from . import bolt11codec
from ._proto import lightning_pb2, lightning_pb2_grpc
from ._proto.invoicesrpc import invoices_pb2, invoices_pb2_grpc
from ._proto.routerrpc import router_pb2, router_pb2_grpc
from ._proto.signrpc import signer_pb2
from ._proto.walletrpc import walletkit_pb2, walletkit_pb2_grpc
from .convert import invoice_from
from .daemon import DaemonClient
from .errors import map_rpc_error, unavailable
from .payments import PaymentBook, follow_payment
from .settings import LndSettings
from .sim import LndSimulator, SimNetwork
from .sim.chain import vsize

__all__ = ["LndBackend"]

log = logging.getLogger(__name__)

_FINAL_INVOICE = frozenset({InvoiceState.SETTLED, InvoiceState.CANCELED})
_MAX_OP_RETURN = 80
_OP_RETURN, _OP_PUSHDATA1, _OP_PUSHDATA2 = 0x6A, 0x4C, 0x4D
_DEFAULT_LABEL = "arkrelay commitment"
_MAX_LABEL = 500  # lnd's labels.MaxLength
#: The smallest child lnd's sweeper makes for CPFP (one key-spend input, one output):
#: assuming no bigger one, the package reaches the rate asked for, or a little more.
_CHILD_VBYTES = 110
#: The child's fee budget, in vbytes at its starting rate: twice a two-input child. lnd's
#: fee function climbs from the starting rate towards budget / size over its deadline and
#: refuses a budget that leaves it no room; this keeps that room small and the spend
#: bounded.
_CHILD_BUDGET_VBYTES = 2 * 180
#: How lnd (and the bitcoind or btcd behind it) refuse a transaction they already have.
_ALREADY_PUBLISHED = (
    "already in mempool",
    "already-in-mempool",
    "already known",
    "already-known",
    "already confirmed",
    "already in block chain",
    "already have transaction",
)


class _Stubs:
    def __init__(self, channel: grpc.Channel) -> None:
        self.lightning = lightning_pb2_grpc.LightningStub(channel)
        self.invoices = invoices_pb2_grpc.InvoicesStub(channel)
        self.router = router_pb2_grpc.RouterStub(channel)
        self.wallet = walletkit_pb2_grpc.WalletKitStub(channel)


class LndBackend(DaemonClient):
    """An lnd client. With no ``target`` configured it runs (and owns) a simulated network
    and uses its ``gateway`` node."""

    daemon = "lnd"
    map_error = staticmethod(map_rpc_error)
    unavailable = staticmethod(unavailable)
    settings: LndSettings

    def __init__(
        self,
        settings: LndSettings,
        context: PluginContext | None = None,
        *,
        simulator: LndSimulator | None = None,
        node: str = "gateway",
    ) -> None:
        super().__init__(settings, context, simulator=simulator, node=node)
        self.features = frozenset({"hold_invoices", "op_return"})
        self._stubs: _Stubs | None = None
        # Payments this backend made or is making, by hash (the double-pay guard), and the
        # invoices it created that are not settled or canceled yet (caught up by lookup
        # after a stream reconnect).
        self._payments = PaymentBook(settings.memory)
        self._watching: collections.OrderedDict[str, InvoiceState] = collections.OrderedDict()
        self.invoice_updates = 0
        self.stream_reconnects = 0

    def build_simulator(self, network: SimNetwork) -> LndSimulator:
        network.chain.fee_floor = self.settings.simulator.fee_floor
        return LndSimulator(network, host=self.settings.simulator.host)

    def serve_simulator(self) -> Callable[..., Awaitable[None]]:
        assert self.simulator is not None
        interval = self.settings.simulator.block_interval.seconds or None
        data_dir = self.context.data_dir if self.context is not None else None
        return functools.partial(self.simulator.serve, data_dir=data_dir, block_interval=interval)

    def connected(self, channel: grpc.Channel) -> None:
        self._stubs = _Stubs(channel)

    def statistics(self) -> Mapping[str, Any]:
        return {
            **self.connection_statistics(),
            **self._payments.statistics(),
            "hold_invoices_watched": len(self._watching),
            "invoice_updates": self.invoice_updates,
            "stream_reconnects": self.stream_reconnects,
        }

    def _rpc(self) -> _Stubs:
        if self._stubs is None:
            raise RuntimeError("LndBackend.serve() has not started")
        return self._stubs

    # ------------------------------------------------------------------ info and invoices

    async def get_info(self) -> LightningInfo:
        resp = await self.caller.call(
            "GetInfo",
            self._rpc().lightning.GetInfo,
            lightning_pb2.GetInfoRequest(),
            idempotent=True,
        )
        network = resp.chains[0].network if resp.chains else ""
        return LightningInfo(
            pubkey=resp.identity_pubkey,
            network=network,
            block_height=resp.block_height,
            synced=resp.synced_to_chain,
            version=resp.version,
        )

    async def create_invoice(self, amount_msat: int, *, memo: str, expiry: int) -> Invoice:
        request = lightning_pb2.Invoice(memo=memo, value_msat=amount_msat, expiry=expiry)
        resp = await self.caller.call(
            "AddInvoice", self._rpc().lightning.AddInvoice, request, idempotent=False
        )
        self._remember(self._watching, resp.r_hash.hex(), InvoiceState.OPEN)
        return self._new_invoice(resp.r_hash.hex(), resp.payment_request, resp.add_index, memo)

    async def create_hold_invoice(
        self, payment_hash: str, amount_msat: int, *, memo: str, expiry: int
    ) -> Invoice:
        request = invoices_pb2.AddHoldInvoiceRequest(
            memo=memo, hash=_hash_bytes(payment_hash), value_msat=amount_msat, expiry=expiry
        )
        resp = await self.caller.call(
            "AddHoldInvoice", self._rpc().invoices.AddHoldInvoice, request, idempotent=False
        )
        self._remember(self._watching, payment_hash.lower(), InvoiceState.OPEN)
        return self._new_invoice(payment_hash.lower(), resp.payment_request, resp.add_index, memo)

    def _new_invoice(self, payment_hash: str, bolt11: str, add_index: int, memo: str) -> Invoice:
        decoded = bolt11codec.decode(bolt11)
        return Invoice(
            payment_hash=payment_hash,
            bolt11=bolt11,
            amount_msat=decoded.amount_msat,
            state=InvoiceState.OPEN,
            expires_at=decoded.expires_at,
            memo=memo,
            add_index=add_index,
        )

    async def lookup_invoice(self, payment_hash: str) -> Invoice:
        request = lightning_pb2.PaymentHash(r_hash=_hash_bytes(payment_hash))
        resp = await self.caller.call(
            "LookupInvoice", self._rpc().lightning.LookupInvoice, request, idempotent=True
        )
        return invoice_from(resp)

    async def settle_invoice(self, preimage: str) -> None:
        request = invoices_pb2.SettleInvoiceMsg(preimage=_hash_bytes(preimage))
        # Settling twice is harmless to lnd, so a timed-out settle may be retried.
        await self.caller.call(
            "SettleInvoice", self._rpc().invoices.SettleInvoice, request, idempotent=True
        )

    async def cancel_invoice(self, payment_hash: str) -> None:
        request = invoices_pb2.CancelInvoiceMsg(payment_hash=_hash_bytes(payment_hash))
        await self.caller.call(
            "CancelInvoice", self._rpc().invoices.CancelInvoice, request, idempotent=True
        )

    async def stream_invoices(
        self,
        send: trio.MemorySendChannel[Invoice],
        *,
        after_add_index: int = 0,
        after_settle_index: int = 0,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        lightning = self._rpc().lightning
        settings = self.settings
        backoff = Backoff(settings.backoff_initial.seconds, settings.backoff_max.seconds)
        indexes = [after_add_index, after_settle_index]
        started = False

        async def forward(message: Any) -> None:
            invoice = invoice_from(message)
            indexes[0] = max(indexes[0], invoice.add_index)
            indexes[1] = max(indexes[1], invoice.settle_index)
            await self._deliver(invoice, send)

        while True:
            request = lightning_pb2.InvoiceSubscription(
                add_index=indexes[0], settle_index=indexes[1]
            )
            call = lightning.SubscribeInvoices(request, metadata=self.caller.metadata)
            try:
                # lnd sends headers once it has registered the subscription; from then on
                # nothing is missed, so catching up by lookup is safe after this point.
                with trio.fail_after(settings.call_timeout.seconds):
                    await trio.to_thread.run_sync(call.initial_metadata, abandon_on_cancel=True)
                if not started:
                    task_status.started()
                    started = True
                backoff.reset()
                broken: list[grpc.RpcError] = []
                async with trio.open_nursery() as nursery:
                    if self.stream_reconnects:
                        nursery.start_soon(self._catch_up_watched, send)
                    try:
                        await pump(call, forward)
                    except grpc.RpcError as exc:
                        # Kept out of the nursery, which would wrap it in an ExceptionGroup.
                        broken.append(exc)
                    nursery.cancel_scope.cancel()
                if broken:
                    raise broken[0]
                log.info("lnd invoice stream ended; reconnecting")
            except grpc.RpcError as exc:
                log.warning(
                    "lnd invoice stream failed: %s", map_rpc_error(exc, "SubscribeInvoices")
                )
            except trio.TooSlowError:
                log.warning("lnd invoice stream: no answer in %ss", settings.call_timeout.seconds)
            finally:
                call.cancel()
            self.stream_reconnects += 1
            await backoff.sleep()

    async def _catch_up_watched(self, send: trio.MemorySendChannel[Invoice]) -> None:
        for payment_hash in list(self._watching):
            try:
                invoice = await self.lookup_invoice(payment_hash)
            except InvoiceInvalid:
                self._watching.pop(payment_hash, None)
                continue
            except BackendError as exc:
                # lnd went away again: the next reconnect catches up once more.
                log.warning("lnd invoice catch-up stopped: %s", exc)
                return
            if invoice.state is not self._watching.get(payment_hash):
                await self._deliver(invoice, send)

    async def _deliver(self, invoice: Invoice, send: trio.MemorySendChannel[Invoice]) -> None:
        self.invoice_updates += 1
        if invoice.payment_hash in self._watching:
            if invoice.state in _FINAL_INVOICE:
                self._watching.pop(invoice.payment_hash)
            else:
                self._watching[invoice.payment_hash] = invoice.state
        await send.send(invoice)

    async def decode_invoice(self, bolt11: str) -> DecodedInvoice:
        local = bolt11codec.decode(bolt11)  # garbage never reaches lnd
        resp = await self.caller.call(
            "DecodePayReq",
            self._rpc().lightning.DecodePayReq,
            lightning_pb2.PayReqString(pay_req=bolt11.strip()),
            idempotent=True,
        )
        return DecodedInvoice(
            payment_hash=resp.payment_hash,
            amount_msat=resp.num_msat,
            destination=resp.destination,
            timestamp=resp.timestamp,
            expiry=resp.expiry,
            network=local.network,
            description=resp.description,
        )

    # ------------------------------------------------------------------ payments

    async def pay_invoice(
        self, bolt11: str, *, fee_limit_sat: int, timeout_seconds: int
    ) -> Payment:
        """Pay through the router. Returns SUCCEEDED, FAILED (definitely, nothing can land),
        or PENDING when lnd gave no verdict in time or the stream broke: unknown is
        pending; follow it with ``track_payment``."""
        payment_hash = bolt11codec.decode(bolt11).payment_hash
        self.caller.breaker.check()
        self._payments.begin(payment_hash)
        payment = None
        try:
            request = router_pb2.SendPaymentRequest(
                payment_request=bolt11.strip(),
                fee_limit_sat=fee_limit_sat,
                timeout_seconds=timeout_seconds,
            )
            wait = timeout_seconds + self.settings.pay_grace.seconds
            call = self._rpc().router.SendPaymentV2(
                request, metadata=self.caller.metadata, timeout=wait
            )
            payment = await follow_payment(self.caller, call, "SendPaymentV2", payment_hash, wait)
        finally:
            self._payments.end(payment_hash, payment)
        return payment

    async def track_payment(self, payment_hash: str) -> Payment:
        """lnd's current verdict; PENDING when lnd cannot be asked (unknown is pending)."""
        payment_hash = payment_hash.lower()
        request = router_pb2.TrackPaymentRequest(payment_hash=_hash_bytes(payment_hash))
        try:
            self.caller.breaker.check()
            # wait_for_ready: a channel still reconnecting after an lnd restart waits (up
            # to the deadline) instead of failing at once.
            call = self._rpc().router.TrackPaymentV2(
                request,
                metadata=self.caller.metadata,
                timeout=self.settings.call_timeout.seconds,
                wait_for_ready=True,
            )
            # The first update is the payment's current state; no need to wait for more.
            payment = await follow_payment(
                self.caller,
                call,
                "TrackPaymentV2",
                payment_hash,
                self.settings.call_timeout.seconds,
                first=True,
            )
        except BackendError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, grpc.Call) and cause.code() is grpc.StatusCode.NOT_FOUND):
                raise
            if self._payments.sending(payment_hash):
                return Payment(payment_hash, PaymentStatus.PENDING, failure_reason="sending")
            # lnd never initiated it (NOT_FOUND), and we are not sending it: nothing can land.
            payment = Payment(payment_hash, PaymentStatus.FAILED, failure_reason="not_initiated")
        if payment.status is not PaymentStatus.PENDING or self._payments.knows(payment_hash):
            self._payments.record(payment_hash, payment)
        return payment

    # ------------------------------------------------------------------ on-chain

    async def onchain_balance(self) -> OnchainBalance:
        resp = await self.caller.call(
            "WalletBalance",
            self._rpc().lightning.WalletBalance,
            lightning_pb2.WalletBalanceRequest(),
            idempotent=True,
        )
        return OnchainBalance(
            confirmed_sat=resp.confirmed_balance, unconfirmed_sat=resp.unconfirmed_balance
        )

    async def send_op_return(
        self, data: bytes, *, sat_per_vbyte: int, label: str = ""
    ) -> OnchainTx:
        """Publish a transaction carrying ``data`` (at most 80 bytes) in an OP_RETURN
        output, labelled ``label`` in lnd's wallet; lnd funds it and adds its change
        output."""
        _check_op_return(data)
        label = label or _DEFAULT_LABEL
        if len(label) > _MAX_LABEL:
            raise ValueError(f"an lnd label is at most {_MAX_LABEL} characters")
        request = walletkit_pb2.SendOutputsRequest(
            sat_per_kw=sat_per_vbyte * 250,
            outputs=[signer_pb2.TxOut(value=0, pk_script=_op_return_script(data))],
            label=label,
            min_confs=1,
        )
        resp = await self.caller.call(
            "SendOutputs", self._rpc().wallet.SendOutputs, request, idempotent=False
        )
        raw = bytes(resp.raw_tx)
        return OnchainTx(txid=Transaction.parse(raw).txid().hex(), raw_hex=raw.hex())

    async def find_op_return(self, data: bytes) -> OnchainTx | None:
        """The wallet's transaction whose OP_RETURN pushes exactly ``data`` (the most
        confirmed if there are several), or None."""
        _check_op_return(data)
        found = []
        for tx in await self._wallet_transactions():
            # Most wallet transactions do not even contain the bytes: skip parsing them.
            if data.hex() not in tx.raw_tx_hex:
                continue
            parsed = _parse_tx(bytes.fromhex(tx.raw_tx_hex))
            if any(_op_return_data(out.script_pubkey.data) == data for out in parsed.vout):
                found.append(tx)
        if not found:
            return None
        best = max(found, key=lambda tx: (tx.num_confirmations, -tx.block_height))
        return OnchainTx(txid=best.tx_hash, raw_hex=best.raw_tx_hex)

    async def bump_fee(self, txid: str, *, sat_per_vbyte: int) -> None:
        """Raise ``txid``'s effective fee rate to ``sat_per_vbyte`` by CPFP: lnd's sweeper
        spends the wallet's own output of it (its change) in a child paying for both.

        lnd's sweeper prices a child of a wallet transaction on the child's size alone,
        so the child's rate is worked out here for the package (parent + child) to reach
        ``sat_per_vbyte``. Bumping again replaces the child (RBF); the txid stays."""
        if sat_per_vbyte < 1:
            raise ValueError("sat_per_vbyte must be at least 1")
        tx = await self._wallet_transaction(txid)
        if tx is None:
            raise BackendError(f"lnd's wallet has no transaction {txid}", code=ErrorCode.INTERNAL)
        if tx.num_confirmations > 0:
            raise BackendError(
                f"transaction {txid} is already confirmed; its fee cannot be bumped",
                code=ErrorCode.INTERNAL,
            )
        ours = [out for out in tx.output_details if out.is_our_address]
        if not ours:
            raise BackendError(
                f"transaction {txid} has no output of lnd's wallet to bump it with (CPFP)",
                code=ErrorCode.INTERNAL,
            )
        parent_vsize = vsize(_parse_tx(bytes.fromhex(tx.raw_tx_hex)))
        parent_fee = max(tx.total_fees, 0)
        if parent_fee >= sat_per_vbyte * parent_vsize:
            return  # it pays that much on its own
        child_fee = sat_per_vbyte * (parent_vsize + _CHILD_VBYTES) - parent_fee
        child_rate = max(1, math.ceil(child_fee / _CHILD_VBYTES))
        output = max(ours, key=lambda out: out.amount)
        request = walletkit_pb2.BumpFeeRequest(
            outpoint=lightning_pb2.OutPoint(txid_str=txid, output_index=output.output_index),
            sat_per_vbyte=child_rate,
            immediate=True,
            budget=child_rate * _CHILD_BUDGET_VBYTES,
        )
        # Registering the same input with the same parameters twice is harmless.
        await self.caller.call("BumpFee", self._rpc().wallet.BumpFee, request, idempotent=True)

    async def rebroadcast(self, raw_hex: str) -> None:
        """Publish a transaction again. Already in the mempool, known or confirmed counts
        as success; any other refusal raises BackendError."""
        raw = bytes.fromhex(raw_hex)
        txid = _parse_tx(raw).txid().hex()
        request = walletkit_pb2.Transaction(tx_hex=raw)
        try:
            resp = await self.caller.call(
                "PublishTransaction",
                self._rpc().wallet.PublishTransaction,
                request,
                idempotent=True,
            )
        except BackendError as exc:
            if isinstance(exc, BackendUnavailable | CircuitOpen):
                raise
            if not await self._already_there(txid, str(exc)):
                raise
            return
        if resp.publish_error and not await self._already_there(txid, resp.publish_error):
            raise BackendError(
                f"lnd PublishTransaction: {resp.publish_error}", code=ErrorCode.INTERNAL
            )

    async def _already_there(self, txid: str, refusal: str) -> bool:
        """Whether a refused publish means the transaction is already out there: lnd's
        backend says so, or (it may call that a double spend) the wallet has it mined."""
        if any(words in refusal.lower() for words in _ALREADY_PUBLISHED):
            return True
        return (await self.tx_confirmations(txid)).confirmations > 0

    async def tx_confirmations(self, txid: str) -> TxConfirmation:
        tx = await self._wallet_transaction(txid)
        if tx is None:
            return TxConfirmation(txid=txid, confirmations=0)
        return TxConfirmation(
            txid=txid,
            confirmations=max(tx.num_confirmations, 0),
            block_height=tx.block_height or None,
            block_hash=tx.block_hash or None,
        )

    async def _wallet_transactions(self) -> list[Any]:
        resp = await self.caller.call(
            "GetTransactions",
            self._rpc().lightning.GetTransactions,
            # end_height -1: the unconfirmed ones too.
            lightning_pb2.GetTransactionsRequest(end_height=-1),
            idempotent=True,
        )
        return list(resp.transactions)

    async def _wallet_transaction(self, txid: str) -> Any | None:
        txid = txid.lower()
        return next((tx for tx in await self._wallet_transactions() if tx.tx_hash == txid), None)

    # ------------------------------------------------------------------ helpers

    def _remember(self, memory: collections.OrderedDict[str, Any], key: str, value: Any) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > self.settings.memory:
            memory.popitem(last=False)


def _check_op_return(data: bytes) -> None:
    if not 0 < len(data) <= _MAX_OP_RETURN:
        raise ValueError(f"OP_RETURN data must be 1..{_MAX_OP_RETURN} bytes")


def _op_return_script(data: bytes) -> bytes:
    push = bytes([len(data)]) if len(data) <= 75 else bytes([_OP_PUSHDATA1, len(data)])
    return bytes([_OP_RETURN]) + push + data


def _op_return_data(script: bytes) -> bytes | None:
    """The data an OP_RETURN script pushes (one push, nothing after it), else None."""
    if len(script) < 2 or script[0] != _OP_RETURN:
        return None
    if script[1] <= 75:
        start, size = 2, script[1]
    elif script[1] == _OP_PUSHDATA1 and len(script) >= 3:
        start, size = 3, script[2]
    elif script[1] == _OP_PUSHDATA2 and len(script) >= 4:
        start, size = 4, int.from_bytes(script[2:4], "little")
    else:
        return None
    return script[start:] if len(script) - start == size else None


def _parse_tx(raw: bytes) -> Transaction:
    try:
        return Transaction.parse(raw)
    except (RuntimeError, EmbitError) as exc:  # embit's short read / bad field
        raise ValueError(f"not a bitcoin transaction: {exc}") from exc


def _hash_bytes(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvoiceInvalid(f"not a 32-byte hex hash or preimage: {value!r}")
    return raw
