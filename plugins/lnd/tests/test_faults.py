"""The client against the simulated network over real gRPC: auth, error mapping, retries
across a restart, the breaker, stream catch-up after a real restart, and payments whose
outcome is unknown staying pending."""

from __future__ import annotations

import hashlib
import os

import pytest
import trio

from arkrelay_core.codes import ErrorCode
from arkrelay_core.config import Duration, Secret
from arkrelay_core.errors import BackendError, BackendUnavailable, CircuitOpen, InvoiceInvalid
from arkrelay_core.interfaces import Invoice, InvoiceState, PaymentStatus
from arkrelay_lnd.client import LndBackend
from arkrelay_lnd.sim import LndSimulator

from .conftest import Connect

AMOUNT = 42_000_000


async def _state(
    updates: trio.MemoryReceiveChannel[Invoice], h: str, state: InvoiceState
) -> Invoice:
    async for invoice in updates:
        if invoice.payment_hash == h and invoice.state is state:
            return invoice
    raise AssertionError("stream ended")


async def test_a_wrong_macaroon_is_refused_and_not_an_invoice_error(connect: Connect) -> None:
    backend = await connect(macaroon=Secret("00" * 16))
    with pytest.raises(BackendError) as refused:
        await backend.create_invoice(1_000, memo="", expiry=60)
    assert not isinstance(refused.value, InvoiceInvalid | BackendUnavailable)
    assert "macaroon" in str(refused.value)
    assert backend.caller.breaker.state == "closed"  # lnd answered: it is up


async def test_retries_ride_out_a_restart(sim: LndSimulator, connect: Connect) -> None:
    backend = await connect(retries=8, backoff_initial=Duration(0.1), backoff_max=Duration(0.3))
    await backend.get_info()
    sim.stop("gateway")

    async def restart_soon() -> None:
        await trio.sleep(0.4)
        sim.start("gateway")

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(restart_soon)
            info = await backend.get_info()
    assert info.pubkey == sim.node("gateway").pubkey
    assert backend.statistics()["retries"] >= 1  # type: ignore[operator]


async def test_breaker_opens_after_five_failures_and_recovers(
    sim: LndSimulator, connect: Connect
) -> None:
    backend = await connect(retries=0, breaker_reset=Duration(1))
    sim.stop("gateway")
    for _ in range(5):
        with pytest.raises(BackendUnavailable) as down:
            await backend.onchain_balance()
        assert down.value.code == ErrorCode.CIRCUIT_OPEN
    calls = backend.caller.calls
    with pytest.raises(CircuitOpen):
        await backend.get_info()
    assert backend.caller.calls == calls
    sim.start("gateway")
    await trio.sleep(1.1)
    assert (await backend.get_info()).network == "regtest"
    assert backend.caller.breaker.state == "closed"


async def test_stream_catches_up_after_a_real_restart(sim: LndSimulator, connect: Connect) -> None:
    # A long first backoff leaves a window in which lnd is back up but the client has not
    # resubscribed yet: what happens then must still arrive.
    gateway = await connect(backoff_initial=Duration(1), backoff_max=Duration(1))
    outside = await connect("outside")
    preimage = os.urandom(32)
    held_hash = hashlib.sha256(preimage).hexdigest()
    send, updates = trio.open_memory_channel[Invoice](64)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.stream_invoices, send)
            plain = await gateway.create_invoice(AMOUNT, memo="plain", expiry=600)
            held = await gateway.create_hold_invoice(held_hash, AMOUNT, memo="held", expiry=600)
            await _state(updates, held_hash, InvoiceState.OPEN)
            sim.stop("gateway")
            sim.start("gateway")
            paid = await outside.pay_invoice(plain.bolt11, fee_limit_sat=100, timeout_seconds=5)
            assert paid.status is PaymentStatus.SUCCEEDED
            pending = await outside.pay_invoice(held.bolt11, fee_limit_sat=100, timeout_seconds=0)
            assert pending.status is PaymentStatus.PENDING
            settled = await _state(updates, plain.payment_hash, InvoiceState.SETTLED)
            accepted = await _state(updates, held_hash, InvoiceState.ACCEPTED)
            assert gateway.stream_reconnects >= 1
            assert (settled.amount_paid_msat, accepted.amount_paid_msat) == (AMOUNT, AMOUNT)
            await gateway.settle_invoice(preimage.hex())
            await _state(updates, held_hash, InvoiceState.SETTLED)
            nursery.cancel_scope.cancel()


async def test_a_lost_payment_stream_is_pending_never_failed(
    sim: LndSimulator, connect: Connect
) -> None:
    gateway = await connect(retries=5)
    outside = await connect("outside")
    invoice = await outside.create_invoice(AMOUNT, memo="land", expiry=600)
    sim.node("gateway").stuck = True

    async def crash_soon() -> None:
        await trio.sleep(0.5)
        sim.stop("gateway")

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(crash_soon)
            lost = await gateway.pay_invoice(invoice.bolt11, fee_limit_sat=100, timeout_seconds=20)
    assert lost.status is PaymentStatus.PENDING
    # lnd is down: tracking cannot tell, so still pending.
    assert (await gateway.track_payment(invoice.payment_hash)).status is PaymentStatus.PENDING
    sim.start("gateway")
    assert (await gateway.track_payment(invoice.payment_hash)).status is PaymentStatus.PENDING
    sim.network.release(sim.node("gateway"), bytes.fromhex(invoice.payment_hash), succeed=True)
    done = await gateway.track_payment(invoice.payment_hash)
    assert done.status is PaymentStatus.SUCCEEDED and done.preimage


async def test_double_pay_is_refused_before_any_rpc(sim: LndSimulator, connect: Connect) -> None:
    gateway = await connect(retries=0)
    outside = await connect("outside")
    invoice = await outside.create_invoice(AMOUNT, memo="once", expiry=600)
    assert (
        await gateway.pay_invoice(invoice.bolt11, fee_limit_sat=100, timeout_seconds=5)
    ).status is PaymentStatus.SUCCEEDED
    sim.stop("gateway")  # any RPC would now fail as unavailable
    with pytest.raises(InvoiceInvalid) as again:
        await gateway.pay_invoice(invoice.bolt11, fee_limit_sat=100, timeout_seconds=5)
    assert again.value.code == ErrorCode.INVOICE_INVALID


async def test_lnd_refuses_a_hash_paid_by_an_earlier_process(connect: Connect) -> None:
    outside = await connect("outside")
    invoice = await outside.create_invoice(AMOUNT, memo="once", expiry=600)
    first = await connect()
    await first.pay_invoice(invoice.bolt11, fee_limit_sat=100, timeout_seconds=5)
    restarted = await connect()  # no memory of the first payment: lnd refuses
    with pytest.raises(InvoiceInvalid, match="already paid"):
        await restarted.pay_invoice(invoice.bolt11, fee_limit_sat=100, timeout_seconds=5)


async def test_failure_modes_fail_payments_definitely(sim: LndSimulator, connect: Connect) -> None:
    gateway = await connect()
    outside = await connect("outside")
    sim.node("gateway").no_route = True
    invoice = await outside.create_invoice(AMOUNT, memo="", expiry=600)
    failed = await gateway.pay_invoice(invoice.bolt11, fee_limit_sat=100, timeout_seconds=5)
    assert (failed.status, failed.failure_reason) == (PaymentStatus.FAILED, "no_route")
    # A failed payment may be tried again; with the route back it lands.
    sim.node("gateway").no_route = False
    again = await gateway.pay_invoice(invoice.bolt11, fee_limit_sat=100, timeout_seconds=5)
    assert again.status is PaymentStatus.SUCCEEDED

    offline = await outside.create_invoice(AMOUNT, memo="", expiry=600)
    sim.stop("outside")
    unreachable = await gateway.pay_invoice(offline.bolt11, fee_limit_sat=100, timeout_seconds=5)
    assert (unreachable.status, unreachable.failure_reason) == (PaymentStatus.FAILED, "no_route")


async def test_tracking_an_unknown_payment_is_failed_not_initiated(gateway: LndBackend) -> None:
    payment = await gateway.track_payment("ab" * 32)
    assert (payment.status, payment.failure_reason) == (PaymentStatus.FAILED, "not_initiated")


async def test_invoice_refusals_are_invoice_invalid(gateway: LndBackend) -> None:
    with pytest.raises(InvoiceInvalid):
        await gateway.lookup_invoice("cd" * 32)
    existing = await gateway.create_hold_invoice("ef" * 32, 1_000, memo="", expiry=60)
    with pytest.raises(InvoiceInvalid, match="already exists"):
        await gateway.create_hold_invoice(existing.payment_hash, 1_000, memo="", expiry=60)
    with pytest.raises(InvoiceInvalid):
        await gateway.settle_invoice("11" * 32)  # no such invoice
