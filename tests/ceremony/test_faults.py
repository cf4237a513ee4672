"""The gateway process is SIGKILLed at each step of a session and started again: every
session still ends once, with exactly one 31340 or 31341, and nothing is paid twice."""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from pathlib import Path

import trio

from arkrelay_core.codes import ErrorCode
from arkrelay_core.interfaces import InvoiceState
from arkrelay_core.nostr import bip340
from arkrelay_core.protocol import Kind
from arkrelay_core.protocol.tags import session_id_for
from arkrelay_core.servicekey import create_key_file

from .harness import node_client
from .outcomes import transfer_params
from .processes import (
    arkd_simulator,
    gateway_process,
    lightning_section,
    lnd_simulator,
    write_config,
)
from .wallet import ScriptedWallet

PASSPHRASE = "fault-test-passphrase"
GBTC = "gBTC"
KILL_POINTS = ("after_intent", "at_step_1", "at_step_2", "after_last_answer")


def boarded(log: Path, owner: str) -> list[str]:
    return re.findall(rf"boarded \d+ sats for {owner}: (\S+)", log.read_text())


def outcome_counts(database: Path) -> dict[str, list[int]]:
    """intent id -> kinds of the outcomes the gateway queued for it."""
    with sqlite3.connect(database) as db:
        rows = db.execute("select kind, event from outbox where kind in (31340, 31341)").fetchall()
    found: dict[str, list[int]] = {}
    for kind, event in rows:
        for tag in json.loads(event)["tags"]:
            if tag[0] == "e":
                found.setdefault(tag[1], []).append(kind)
    return found


async def sign_with_a_kill(wallet, intent, point: str, gateway):
    """Run a one-VTXO ceremony (two signatures), SIGKILLing the gateway at ``point``."""
    session = session_id_for(intent.id)

    def mine(received) -> bool:
        return received.content.get("session_id") == session

    await wallet.publish(intent)
    if point == "after_intent":
        await restart(gateway)
    for step in (1, 2):
        challenge = await wallet.next(Kind.CHALLENGE, match=mine, timeout=60)
        if point == f"at_step_{step}":
            await restart(gateway)
        await wallet.answer(challenge)
    if point == "after_last_answer":
        await restart(gateway)
    return await wallet.wait_outcome(None, intent.id, timeout=90)


def sqlite_config(directory: Path, relay_url: str, arkd_port: int, lightning: str = "") -> Path:
    return write_config(
        directory,
        relay_url=relay_url,
        arkd_port=arkd_port,
        database=f"sqlite:///{directory / 'arkrelay.db'}",
        instance="gw-a",
        lightning=lightning,
    )


async def restart(gateway) -> None:
    await trio.to_thread.run_sync(gateway.kill)
    await trio.to_thread.run_sync(gateway.start, "gateway running")


async def test_sigkill_at_each_step(tmp_path: Path, relay) -> None:
    alice_secret, bob_secret = bip340.generate_secret_key(), bip340.generate_secret_key()
    alice_pub = bip340.xonly_public_key(alice_secret).hex()
    key = create_key_file(tmp_path / "gateway.key", PASSPHRASE)
    sim, port = arkd_simulator(tmp_path, [(alice_pub, 5_000)] * len(KILL_POINTS))
    await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
    vtxos = boarded(sim.log, alice_pub)
    directory = tmp_path / "gw"
    gateway = gateway_process(sqlite_config(directory, relay.url, port))
    try:
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        async with (
            ScriptedWallet(relay.url, key.pubkey, secret=alice_secret) as alice,
            ScriptedWallet(relay.url, key.pubkey, secret=bob_secret) as bob,
        ):
            intents = []
            for point, vtxo_id in zip(KILL_POINTS, vtxos, strict=True):
                intent = alice.intent(
                    "ark:transfer",
                    transfer_params(bob.pubkey, vtxo_ids=[vtxo_id]),
                )
                intents.append(intent)
                outcome = await sign_with_a_kill(alice, intent, point, gateway)
                assert outcome.event.kind == Kind.CONFIRMATION, (point, outcome.content)
            received = [
                m for r in [outcome] for m in r.content["created"] if m["owner"] == bob.pubkey
            ]
            assert received
        assert gateway.starts == 1 + len(KILL_POINTS)
        counts = outcome_counts(directory / "arkrelay.db")
        for point, intent in zip(KILL_POINTS, intents, strict=True):
            assert counts.get(intent.id) == [Kind.CONFIRMATION], point
    finally:
        gateway.kill()
        sim.kill()
    # Every VTXO spent exactly once: bob holds exactly one 1000-sat VTXO per intent.
    text = (tmp_path / "arkd-sim.log").read_text()
    assert text.count("accepted ark tx") == len(KILL_POINTS), text[-3000:]


LAND_KILL_POINTS = ("at_step_1", "at_step_2", "after_last_answer")


async def test_sigkill_during_lands_pays_each_invoice_once(tmp_path: Path, relay) -> None:
    alice_secret = bip340.generate_secret_key()
    alice_pub = bip340.xonly_public_key(alice_secret).hex()
    key = create_key_file(tmp_path / "gateway.key", PASSPHRASE)
    ln_dir = tmp_path / "ln"
    ln = lnd_simulator(ln_dir)
    sim, port = arkd_simulator(tmp_path, [(alice_pub, 10_000)] * len(LAND_KILL_POINTS))
    directory = tmp_path / "gw"
    gateway = None
    try:
        await trio.to_thread.run_sync(ln.start, "lnd simulator ready")
        await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
        vtxos = boarded(sim.log, alice_pub)
        config = sqlite_config(directory, relay.url, port, lightning_section(ln_dir))
        gateway = gateway_process(config)
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        async with (
            ScriptedWallet(relay.url, key.pubkey, secret=alice_secret) as alice,
            node_client(ln_dir) as shop,
        ):
            for point, vtxo_id in zip(LAND_KILL_POINTS, vtxos, strict=True):
                invoice = await shop.create_invoice(3_000_000, memo=point, expiry=3600)
                params = {
                    "asset_id": GBTC,
                    "amount": 3_000,
                    "lightning_invoice": invoice.bolt11,
                    "fee": {"asset_id": GBTC, "amount": 3},
                }
                intent = alice.intent("lightning:land", params)
                outcome = await sign_with_a_kill(alice, intent, point, gateway)
                assert outcome.event.kind == Kind.CONFIRMATION, (point, outcome.content)
                paid = await shop.lookup_invoice(invoice.payment_hash)
                assert paid.state is InvoiceState.SETTLED, point
                assert paid.amount_paid_msat == 3_000_000, point  # paid once, not twice
                assert vtxo_id  # each land spent its own VTXO
        counts = outcome_counts(directory / "arkrelay.db")
        assert sorted(len(v) for v in counts.values()) == [1] * len(LAND_KILL_POINTS)
    finally:
        if gateway is not None:
            gateway.kill()
        sim.kill()
        ln.kill()


async def test_lift_paid_while_the_gateway_is_down_is_credited_once(tmp_path: Path, relay) -> None:
    alice_secret = bip340.generate_secret_key()
    key = create_key_file(tmp_path / "gateway.key", PASSPHRASE)
    ln_dir = tmp_path / "ln"
    ln = lnd_simulator(ln_dir)
    # The gateway's inventory, which lifts are paid from.
    sim, port = arkd_simulator(tmp_path, [(key.pubkey, 50_000)])
    gateway = None
    try:
        await trio.to_thread.run_sync(ln.start, "lnd simulator ready")
        await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
        config = sqlite_config(tmp_path / "gw", relay.url, port, lightning_section(ln_dir))
        gateway = gateway_process(config)
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        async with (
            ScriptedWallet(relay.url, key.pubkey, secret=alice_secret) as alice,
            node_client(ln_dir) as payer,
            trio.open_nursery() as nursery,
        ):
            reply = await alice.call("lift_lightning", asset_id=GBTC, amount=2_000)
            await trio.to_thread.run_sync(gateway.kill)
            # Paid while the gateway is down: the hold invoice waits, accepted.
            nursery.start_soon(
                functools.partial(
                    payer.pay_invoice, reply["invoice"], fee_limit_sat=10, timeout_seconds=120
                )
            )
            await trio.sleep(1)
            await trio.to_thread.run_sync(gateway.start, "gateway running")
            done = await alice.next(
                Kind.CONFIRMATION,
                match=lambda r: ["d", f"lift:{reply['payment_hash']}"] in r.event.tags,
                timeout=60,
            )
            [credit] = [m for m in done.content["created"] if m["owner"] == alice.pubkey]
            assert credit["amount"] == 2_000
            # Restarted once more: the invoice stream replays the payment, nothing more.
            await restart(gateway)
            await alice.call("get_info")  # the restarted gateway is answering
            sync = await alice.call("sync_state")
            assert [v["amount"] for v in sync["vtxos"]] == [2_000]
        invoice_states = (
            sqlite3.connect(tmp_path / "gw" / "arkrelay.db")
            .execute("select state from invoices")
            .fetchall()
        )
        assert invoice_states == [("settled",)]
    finally:
        if gateway is not None:
            gateway.kill()
        sim.kill()
        ln.kill()


async def test_a_session_that_timed_out_while_down_expires_at_restart(
    tmp_path: Path, relay
) -> None:
    alice_secret = bip340.generate_secret_key()
    alice_pub = bip340.xonly_public_key(alice_secret).hex()
    key = create_key_file(tmp_path / "gateway.key", PASSPHRASE)
    sim, port = arkd_simulator(tmp_path, [(alice_pub, 5_000)])
    directory = tmp_path / "gw"
    config = write_config(
        directory,
        relay_url=relay.url,
        arkd_port=port,
        database=f"sqlite:///{directory / 'arkrelay.db'}",
        instance="gw-a",
        extra='step_timeout = "3s"',
    )
    gateway = gateway_process(config)
    try:
        await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        async with ScriptedWallet(relay.url, key.pubkey, secret=alice_secret) as alice:
            intent = alice.intent("ark:transfer", transfer_params("ab" * 32))
            await alice.publish(intent)
            await alice.next(Kind.CHALLENGE, timeout=60)
            await trio.to_thread.run_sync(gateway.kill)
            await trio.sleep(4)  # the step deadline passes while nobody runs
            await trio.to_thread.run_sync(gateway.start, "gateway running")
            outcome = await alice.wait_outcome(None, intent.id, timeout=60)
            assert outcome.content["code"] == ErrorCode.SIGNING_TIMEOUT
        assert outcome_counts(directory / "arkrelay.db")[intent.id] == [Kind.FAILURE]
    finally:
        gateway.kill()
        sim.kill()
