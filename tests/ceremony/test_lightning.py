"""Lift (hold invoice in, VTXO out) and land (VTXO in, payment out), PROTOCOL.md §5."""

from __future__ import annotations

from pathlib import Path

import trio

from arkrelay_core.codes import ErrorCode
from arkrelay_core.interfaces import InvoiceState, PaymentStatus
from arkrelay_core.protocol import Kind

from .harness import board, lightning_node, outside_node, running_gateway
from .outcomes import action_id, ark_calls, outcomes_for
from .wallet import ScriptedWallet

GBTC = "gBTC"


def land(bolt11: str, amount: int) -> dict:
    fee = -(-amount // 1000)
    return {
        "asset_id": GBTC,
        "amount": amount,
        "lightning_invoice": bolt11,
        "fee": {"asset_id": GBTC, "amount": fee},
    }


async def test_lift_delivers_a_vtxo_then_settles(tmp_path: Path, relay) -> None:
    async with (
        running_gateway(tmp_path / "gw", relay.url) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as wallet,
    ):
        reply = await wallet.call("lift_lightning", asset_id=GBTC, amount=2_000)
        assert reply["status"] == "pending"
        payment_hash = reply["payment_hash"]
        results = []
        async with outside_node(gateway) as payer, trio.open_nursery() as nursery:

            async def pay() -> None:
                results.append(
                    await payer.pay_invoice(reply["invoice"], fee_limit_sat=10, timeout_seconds=60)
                )

            nursery.start_soon(pay)
            confirmation = await wallet.next(
                Kind.CONFIRMATION,
                match=lambda r: ["d", f"lift:{payment_hash}"] in r.event.tags,
                timeout=60,
            )
        assert results[0].status is PaymentStatus.SUCCEEDED
        [created] = [m for m in confirmation.content["created"] if m["owner"] == wallet.pubkey]
        assert created["amount"] == 2_000
        assert confirmation.content["payment_hash"] == payment_hash
        mine = await gateway.components.backends["ark"].list_vtxos(wallet.pubkey)
        assert [v.amount for v in mine] == [2_000]
        invoice = await gateway.components.backends["lightning"].lookup_invoice(payment_hash)
        assert invoice.state is InvoiceState.SETTLED


async def test_land_pays_the_invoice(tmp_path: Path, relay) -> None:
    async with (
        running_gateway(tmp_path / "gw", relay.url) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as wallet,
        outside_node(gateway) as shop,
    ):
        await board(gateway, wallet.pubkey, 10_000)
        invoice = await shop.create_invoice(3_000_000, memo="coffee", expiry=3600)
        intent = wallet.intent("lightning:land", land(invoice.bolt11, 3_000))
        outcome = await wallet.run_ceremony(intent)
        assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
        assert (await shop.lookup_invoice(invoice.payment_hash)).state is InvoiceState.SETTLED
        paid = [m for m in outcome.content["created"] if m["owner"] == gateway.identity.pubkey]
        assert [m["amount"] for m in paid] == [3_003]
        # The same invoice again: already being paid (5003), before any Ark call.
        again = wallet.intent("lightning:land", land(invoice.bolt11, 3_000))
        refused = await wallet.run_ceremony(again)
        assert refused.content["code"] == ErrorCode.INVOICE_INVALID


async def test_land_definitely_failed_is_refunded(tmp_path: Path, relay) -> None:
    async with (
        running_gateway(tmp_path / "gw", relay.url) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as wallet,
        outside_node(gateway) as shop,
    ):
        await board(gateway, wallet.pubkey, 10_000)
        invoice = await shop.create_invoice(3_000_000, memo="coffee", expiry=3600)
        lightning_node(gateway).no_route = True
        intent = wallet.intent("lightning:land", land(invoice.bolt11, 3_000))
        outcome = await wallet.run_ceremony(intent)
        assert outcome.content["code"] == ErrorCode.LIGHTNING_PAYMENT_FAILED
        mine = await gateway.components.backends["ark"].list_vtxos(wallet.pubkey)
        refund = [v for v in mine if v.vtxo_id in outcome.content["message"]]
        assert [v.amount for v in refund] == [3_003]
        assert sum(v.amount for v in mine) == 10_000
        assert (await shop.lookup_invoice(invoice.payment_hash)).state is InvoiceState.OPEN
        assert [k for k, _ in outcomes_for(gateway, intent.id)] == [Kind.FAILURE]


async def test_land_stuck_stays_pending_then_succeeds(tmp_path: Path, relay) -> None:
    async with (
        running_gateway(tmp_path / "gw", relay.url) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as wallet,
        outside_node(gateway) as shop,
    ):
        await board(gateway, wallet.pubkey, 10_000)
        invoice = await shop.create_invoice(3_000_000, memo="coffee", expiry=3600)
        node = lightning_node(gateway)
        node.stuck = True
        intent = wallet.intent("lightning:land", land(invoice.bolt11, 3_000))
        await wallet.publish(intent)
        for _ in range(2):  # one VTXO: its ark-tx and its checkpoint signature
            await wallet.answer(await wallet.next(Kind.CHALLENGE))
        # The simulated node has no "payment started" event to wait on: look until it does.
        with trio.fail_after(60):
            while not node.payments:  # noqa: ASYNC110
                await trio.sleep(0.2)
        status = await wallet.call("get_status", action_id=action_id(intent))
        assert status["state"] == "ark_executed"  # pending: neither paid nor refunded
        assert outcomes_for(gateway, intent.id) == []
        network = gateway.components.backends["lightning"].simulator.network
        network.release(node, bytes.fromhex(invoice.payment_hash), succeed=True)
        outcome = await wallet.wait_outcome(action_id(intent), intent.id)
        assert outcome.event.kind == Kind.CONFIRMATION
        assert (await shop.lookup_invoice(invoice.payment_hash)).state is InvoiceState.SETTLED


async def test_bad_invoices_are_5003_before_any_ark_call(tmp_path: Path, relay) -> None:
    async with (
        running_gateway(tmp_path / "gw", relay.url) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as wallet,
        outside_node(gateway) as shop,
    ):
        await board(gateway, wallet.pubkey, 10_000)
        invoice = await shop.create_invoice(3_000_000, memo="coffee", expiry=3600)
        short = await shop.create_invoice(3_000_000, memo="soon gone", expiry=30)
        cases = {
            "amount differs": land(invoice.bolt11, 2_000),
            "expires too soon": land(short.bolt11, 3_000),
            "not an invoice": land("lnbcrt1notaninvoice", 3_000),
        }
        for name, params in cases.items():
            calls = ark_calls(gateway)
            intent = wallet.intent("lightning:land", params)
            outcome = await wallet.run_ceremony(intent)
            assert outcome.content["code"] == ErrorCode.INVOICE_INVALID, (name, outcome.content)
            assert ark_calls(gateway) == calls, name
