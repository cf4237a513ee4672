"""The LightningBackend conformance suite: any implementation runs it by passing a maker.

    async def test_my_backend():
        await check_lightning_backend(my_maker)

``maker()`` is an async context manager yielding a ``LightningHarness``: the gateway's
running backend, a second backend on another node that pays its invoices and issues
invoices for it to pay (the rest of the world), and the few powers that need a simulator
(making the gateway's payments hang, mining, a fee floor below which blocks leave
transactions out). A power left ``None`` skips the checks that need it; each check gets a
fresh harness.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import pytest
import trio
from capabilities import check_capabilities
from kit import run_all, run_named

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import ArkRelayError, BackendError, InvoiceInvalid
from arkrelay_core.interfaces import (
    Invoice,
    InvoiceState,
    LightningBackend,
    Payment,
    PaymentStatus,
)

__all__ = ["LIGHTNING_CHECKS", "LightningHarness", "Maker", "check_lightning_backend"]

TIMEOUT = 60
AMOUNT_MSAT = 21_000_000
FEE_LIMIT_SAT = 1_000


@dataclasses.dataclass
class LightningHarness:
    backend: LightningBackend
    #: Another node with a route to and from the gateway's.
    payer: LightningBackend
    #: Make the gateway's new outgoing payments hang in flight (True) or route (False).
    set_stuck: Callable[[bool], Awaitable[None]] | None = None
    #: Resolve a hung payment of the gateway: it lands (True) or fails (False).
    release: Callable[[str, bool], Awaitable[None]] | None = None
    #: Mine blocks on the gateway's chain.
    mine: Callable[[int], Awaitable[None]] | None = None
    #: Set the fee rate (sat/vB) a transaction's package must pay to be mined.
    set_fee_floor: Callable[[int], Awaitable[None]] | None = None
    #: The routing fee the payer's invoices cost the gateway, when known and not zero.
    routing_fee_msat: int | None = None


Maker = Callable[[], AbstractAsyncContextManager[LightningHarness]]


def _need(harness: LightningHarness, *powers: str) -> None:
    for power in powers:
        if getattr(harness, power) is None:
            pytest.skip(f"this backend's harness has no {power.replace('_', ' ')}")


def _expect(exc: ArkRelayError, code: ErrorCode) -> None:
    assert exc.code == code, f"expected {code.value} ({code.name}), got {exc.code.value}: {exc}"


def _preimage() -> tuple[str, str]:
    preimage = os.urandom(32)
    return preimage.hex(), hashlib.sha256(preimage).hexdigest()


async def _next_state(
    updates: trio.MemoryReceiveChannel[Invoice], payment_hash: str, state: InvoiceState
) -> Invoice:
    async for invoice in updates:
        if invoice.payment_hash == payment_hash and invoice.state is state:
            return invoice
    raise AssertionError("the invoice stream ended")


async def _wait_payment(
    backend: LightningBackend, payment_hash: str, status: PaymentStatus
) -> Payment:
    while True:
        payment = await backend.track_payment(payment_hash)
        if payment.status is status:
            return payment
        assert payment.status is PaymentStatus.PENDING, payment
        await trio.sleep(0.1)


# ---------------------------------------------------------------------------------- checks


async def check_info(h: LightningHarness) -> None:
    info = await h.backend.get_info()
    assert len(bytes.fromhex(info.pubkey)) == 33
    assert info.network in {"mainnet", "testnet", "signet", "regtest", "simnet"}
    assert info.block_height > 0
    assert isinstance(h.backend.features, frozenset)
    assert isinstance(dict(h.backend.statistics()), dict)
    check_capabilities(h.backend)


async def check_invoice_settles_through_the_stream(h: LightningHarness) -> None:
    send, updates = trio.open_memory_channel[Invoice](64)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.backend.stream_invoices, send)
        invoice = await h.backend.create_invoice(AMOUNT_MSAT, memo="contract", expiry=600)
        assert (invoice.state, invoice.amount_msat, invoice.memo) == (
            InvoiceState.OPEN,
            AMOUNT_MSAT,
            "contract",
        )
        looked = await h.backend.lookup_invoice(invoice.payment_hash)
        assert (looked.state, looked.bolt11, looked.add_index) == (
            InvoiceState.OPEN,
            invoice.bolt11,
            invoice.add_index,
        )
        paid = await h.payer.pay_invoice(
            invoice.bolt11, fee_limit_sat=FEE_LIMIT_SAT, timeout_seconds=30
        )
        assert paid.status is PaymentStatus.SUCCEEDED, paid
        assert hashlib.sha256(bytes.fromhex(paid.preimage or "")).hexdigest() == (
            invoice.payment_hash
        )
        settled = await _next_state(updates, invoice.payment_hash, InvoiceState.SETTLED)
        assert settled.amount_paid_msat == AMOUNT_MSAT and settled.settle_index > 0
        nursery.cancel_scope.cancel()
    looked = await h.backend.lookup_invoice(invoice.payment_hash)
    assert (looked.state, looked.amount_paid_msat) == (InvoiceState.SETTLED, AMOUNT_MSAT)


async def check_missed_settlement_is_recovered(h: LightningHarness) -> None:
    """A settlement while nobody streams arrives when streaming resumes from the last add
    and settle indexes seen (lnd sends no settle backlog for settle index 0, so the
    stream first sees one settlement)."""
    send, updates = trio.open_memory_channel[Invoice](64)
    missed = await h.backend.create_invoice(AMOUNT_MSAT, memo="missed", expiry=600)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.backend.stream_invoices, send)
        earlier = await h.backend.create_invoice(1_000_000, memo="seen", expiry=600)
        await h.payer.pay_invoice(earlier.bolt11, fee_limit_sat=FEE_LIMIT_SAT, timeout_seconds=30)
        seen = await _next_state(updates, earlier.payment_hash, InvoiceState.SETTLED)
        nursery.cancel_scope.cancel()  # the gateway stops listening (a restart)
    paid = await h.payer.pay_invoice(missed.bolt11, fee_limit_sat=FEE_LIMIT_SAT, timeout_seconds=30)
    assert paid.status is PaymentStatus.SUCCEEDED, paid
    send, updates = trio.open_memory_channel[Invoice](64)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(
                h.backend.stream_invoices,
                send,
                after_add_index=seen.add_index,
                after_settle_index=seen.settle_index,
            )
        )
        settled = await _next_state(updates, missed.payment_hash, InvoiceState.SETTLED)
        assert settled.amount_paid_msat == AMOUNT_MSAT
        assert settled.settle_index > seen.settle_index
        nursery.cancel_scope.cancel()


async def check_hold_invoice_settle_and_cancel(h: LightningHarness) -> None:
    send, updates = trio.open_memory_channel[Invoice](64)
    preimage, payment_hash = _preimage()
    _, other_hash = _preimage()
    async with trio.open_nursery() as nursery:
        await nursery.start(h.backend.stream_invoices, send)
        held = await h.backend.create_hold_invoice(
            payment_hash, AMOUNT_MSAT, memo="lift", expiry=600
        )
        assert (held.payment_hash, held.state) == (payment_hash, InvoiceState.OPEN)
        # The payer's payment cannot finish while the invoice is held: pending.
        paying = await h.payer.pay_invoice(
            held.bolt11, fee_limit_sat=FEE_LIMIT_SAT, timeout_seconds=1
        )
        assert paying.status is PaymentStatus.PENDING, paying
        accepted = await _next_state(updates, payment_hash, InvoiceState.ACCEPTED)
        assert accepted.amount_paid_msat == AMOUNT_MSAT
        await h.backend.settle_invoice(preimage)
        await _next_state(updates, payment_hash, InvoiceState.SETTLED)
        done = await _wait_payment(h.payer, payment_hash, PaymentStatus.SUCCEEDED)
        assert done.preimage == preimage

        refused = await h.backend.create_hold_invoice(
            other_hash, AMOUNT_MSAT, memo="lift", expiry=600
        )
        paying = await h.payer.pay_invoice(
            refused.bolt11, fee_limit_sat=FEE_LIMIT_SAT, timeout_seconds=1
        )
        assert paying.status is PaymentStatus.PENDING
        await _next_state(updates, other_hash, InvoiceState.ACCEPTED)
        await h.backend.cancel_invoice(other_hash)
        await _next_state(updates, other_hash, InvoiceState.CANCELED)
        await _wait_payment(h.payer, other_hash, PaymentStatus.FAILED)
        nursery.cancel_scope.cancel()


async def check_pay_with_fee_limit(h: LightningHarness) -> None:
    invoice = await h.payer.create_invoice(AMOUNT_MSAT, memo="land", expiry=600)
    if h.routing_fee_msat:
        # A limit below the route's fee finds no route: failed, nothing sent.
        low = await h.payer.create_invoice(AMOUNT_MSAT, memo="land", expiry=600)
        failed = await h.backend.pay_invoice(
            low.bolt11, fee_limit_sat=h.routing_fee_msat // 1000 - 1, timeout_seconds=10
        )
        assert failed.status is PaymentStatus.FAILED and failed.failure_reason, failed
        assert (await h.payer.lookup_invoice(low.payment_hash)).state is InvoiceState.OPEN
    paid = await h.backend.pay_invoice(
        invoice.bolt11, fee_limit_sat=FEE_LIMIT_SAT, timeout_seconds=30
    )
    assert paid.status is PaymentStatus.SUCCEEDED, paid
    assert paid.amount_msat == AMOUNT_MSAT and 0 <= paid.fee_msat <= FEE_LIMIT_SAT * 1000
    assert hashlib.sha256(bytes.fromhex(paid.preimage or "")).hexdigest() == invoice.payment_hash
    tracked = await h.backend.track_payment(invoice.payment_hash)
    assert (tracked.status, tracked.preimage) == (PaymentStatus.SUCCEEDED, paid.preimage)
    received = await h.payer.lookup_invoice(invoice.payment_hash)
    assert (received.state, received.amount_paid_msat) == (InvoiceState.SETTLED, AMOUNT_MSAT)


async def check_double_pay_is_refused(h: LightningHarness) -> None:
    invoice = await h.payer.create_invoice(AMOUNT_MSAT, memo="once", expiry=600)
    paid = await h.backend.pay_invoice(
        invoice.bolt11, fee_limit_sat=FEE_LIMIT_SAT, timeout_seconds=30
    )
    assert paid.status is PaymentStatus.SUCCEEDED
    with pytest.raises(InvoiceInvalid) as again:
        await h.backend.pay_invoice(invoice.bolt11, fee_limit_sat=FEE_LIMIT_SAT, timeout_seconds=30)
    _expect(again.value, ErrorCode.INVOICE_INVALID)
    assert (await h.payer.lookup_invoice(invoice.payment_hash)).amount_paid_msat == AMOUNT_MSAT


async def check_stuck_payment_is_pending_then_resolves(h: LightningHarness) -> None:
    _need(h, "set_stuck", "release")
    assert h.set_stuck is not None and h.release is not None
    lands = await h.payer.create_invoice(AMOUNT_MSAT, memo="slow", expiry=600)
    fails = await h.payer.create_invoice(AMOUNT_MSAT, memo="slow", expiry=600)
    await h.set_stuck(True)
    for invoice in (lands, fails):
        pending = await h.backend.pay_invoice(
            invoice.bolt11, fee_limit_sat=FEE_LIMIT_SAT, timeout_seconds=1
        )
        assert pending.status is PaymentStatus.PENDING, pending
        assert (await h.backend.track_payment(invoice.payment_hash)).status is (
            PaymentStatus.PENDING
        )
        # Still in flight: paying it again is refused, not attempted.
        with pytest.raises(InvoiceInvalid):
            await h.backend.pay_invoice(
                invoice.bolt11, fee_limit_sat=FEE_LIMIT_SAT, timeout_seconds=1
            )
    await h.set_stuck(False)
    await h.release(lands.payment_hash, True)
    await h.release(fails.payment_hash, False)
    landed = await _wait_payment(h.backend, lands.payment_hash, PaymentStatus.SUCCEEDED)
    assert hashlib.sha256(bytes.fromhex(landed.preimage or "")).hexdigest() == lands.payment_hash
    failed = await _wait_payment(h.backend, fails.payment_hash, PaymentStatus.FAILED)
    assert failed.failure_reason
    assert (await h.payer.lookup_invoice(fails.payment_hash)).state is InvoiceState.OPEN


async def check_decode(h: LightningHarness) -> None:
    invoice = await h.payer.create_invoice(AMOUNT_MSAT, memo="decode me", expiry=900)
    decoded = await h.backend.decode_invoice(invoice.bolt11)
    info = await h.backend.get_info()
    assert decoded.payment_hash == invoice.payment_hash
    assert decoded.amount_msat == AMOUNT_MSAT
    assert decoded.destination == (await h.payer.get_info()).pubkey
    assert (decoded.network, decoded.description, decoded.expiry) == (
        info.network,
        "decode me",
        900,
    )
    assert decoded.expires_at == invoice.expires_at
    for garbage in ("lnbcrt1nonsense", invoice.bolt11[:-4] + "qqqq", ""):
        with pytest.raises(InvoiceInvalid) as bad:
            await h.backend.decode_invoice(garbage)
        _expect(bad.value, ErrorCode.INVOICE_INVALID)
        with pytest.raises(InvoiceInvalid):
            await h.backend.pay_invoice(garbage, fee_limit_sat=1, timeout_seconds=1)


async def check_onchain_op_return(h: LightningHarness) -> None:
    _need(h, "mine")
    assert h.mine is not None
    before = await h.backend.onchain_balance()
    assert before.confirmed_sat > 0
    tx = await h.backend.send_op_return(b"arkrelay" + bytes(24), sat_per_vbyte=2)
    raw = bytes.fromhex(tx.raw_hex)
    assert bytes([0x6A, 32]) + b"arkrelay" in raw
    assert (await h.backend.tx_confirmations(tx.txid)).confirmations == 0
    await h.mine(1)
    confirmed = await h.backend.tx_confirmations(tx.txid)
    assert confirmed.confirmations == 1 and confirmed.block_height and confirmed.block_hash
    after = await h.backend.onchain_balance()
    assert after.confirmed_sat < before.confirmed_sat


def _commitment() -> bytes:
    return b"arkrelay" + os.urandom(24)


async def check_find_op_return(h: LightningHarness) -> None:
    data = _commitment()
    sent = await h.backend.send_op_return(data, sat_per_vbyte=2, label="contract find")
    found = await h.backend.find_op_return(data)
    assert found is not None and (found.txid, found.raw_hex) == (sent.txid, sent.raw_hex)
    assert await h.backend.find_op_return(_commitment()) is None
    # Another commitment whose data starts with this one's is not this one.
    assert await h.backend.find_op_return(data[:-1]) is None
    if h.mine is not None:
        await h.mine(1)
        confirmed = await h.backend.find_op_return(data)
        assert confirmed is not None and confirmed.txid == sent.txid


async def check_rebroadcast(h: LightningHarness) -> None:
    tx = await h.backend.send_op_return(_commitment(), sat_per_vbyte=2)
    await h.backend.rebroadcast(tx.raw_hex)  # in the mempool already: fine
    await h.backend.rebroadcast(tx.raw_hex)
    if h.mine is not None:
        await h.mine(1)
        await h.backend.rebroadcast(tx.raw_hex)  # confirmed: fine too
        assert (await h.backend.tx_confirmations(tx.txid)).confirmations == 1
    with pytest.raises(ValueError):
        await h.backend.rebroadcast("not hex")


async def check_fee_bump_confirms_a_commitment_below_the_floor(h: LightningHarness) -> None:
    _need(h, "mine", "set_fee_floor")
    assert h.mine is not None and h.set_fee_floor is not None
    await h.set_fee_floor(5)
    data = _commitment()
    tx = await h.backend.send_op_return(data, sat_per_vbyte=1)
    await h.mine(2)
    assert (await h.backend.tx_confirmations(tx.txid)).confirmations == 0
    await h.backend.bump_fee(tx.txid, sat_per_vbyte=3)  # still below the floor
    await h.mine(1)
    assert (await h.backend.tx_confirmations(tx.txid)).confirmations == 0
    await h.backend.bump_fee(tx.txid, sat_per_vbyte=6)
    # The parent keeps its txid: the commitment found is the one sent.
    found = await h.backend.find_op_return(data)
    assert found is not None and found.txid == tx.txid
    await h.mine(1)
    confirmed = await h.backend.tx_confirmations(tx.txid)
    assert confirmed.confirmations == 1 and confirmed.block_height and confirmed.block_hash
    await h.mine(1)
    assert (await h.backend.tx_confirmations(tx.txid)).confirmations == 2


async def check_fee_bump_refusals(h: LightningHarness) -> None:
    with pytest.raises(BackendError):
        await h.backend.bump_fee(os.urandom(32).hex(), sat_per_vbyte=5)
    _need(h, "mine")
    assert h.mine is not None
    tx = await h.backend.send_op_return(_commitment(), sat_per_vbyte=2)
    await h.mine(1)
    with pytest.raises(BackendError):
        await h.backend.bump_fee(tx.txid, sat_per_vbyte=10)
    assert (await h.backend.tx_confirmations(tx.txid)).confirmations == 1


LIGHTNING_CHECKS: dict[str, Callable[[LightningHarness], Awaitable[None]]] = {
    "info": check_info,
    "invoice_settles_through_the_stream": check_invoice_settles_through_the_stream,
    "missed_settlement_is_recovered": check_missed_settlement_is_recovered,
    "hold_invoice_settle_and_cancel": check_hold_invoice_settle_and_cancel,
    "pay_with_fee_limit": check_pay_with_fee_limit,
    "double_pay_is_refused": check_double_pay_is_refused,
    "stuck_payment_is_pending_then_resolves": check_stuck_payment_is_pending_then_resolves,
    "decode": check_decode,
    "onchain_op_return": check_onchain_op_return,
    "find_op_return": check_find_op_return,
    "rebroadcast": check_rebroadcast,
    "fee_bump_confirms_a_commitment_below_the_floor": (
        check_fee_bump_confirms_a_commitment_below_the_floor
    ),
    "fee_bump_refusals": check_fee_bump_refusals,
}


async def run_check(maker: Maker, name: str) -> None:
    await run_named(LIGHTNING_CHECKS, maker, name, TIMEOUT)


async def check_lightning_backend(maker: Maker) -> None:
    """Run every check, each on a fresh harness (skipped checks are skipped, not failed)."""
    await run_all(LIGHTNING_CHECKS, maker, TIMEOUT)
