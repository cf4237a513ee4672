"""An event the gateway's relay endpoint acknowledged with ``OK true`` survives a SIGKILL
of the gateway right after that OK: the wallet never sends it again, and the restarted
gateway still carries the session to its end (issue #17). The same through a relay pool:
an event the relay holds but the gateway had not recorded is asked for again."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import trio
from arkrelay_wallet import Wallet

from arkrelay_core.nostr import Event, bip340
from arkrelay_core.protocol import Kind, session_id_for
from arkrelay_core.servicekey import create_key_file
from plugins.nostr.tests.relay_process import free_port

from .outcomes import transfer_params
from .processes import ARKRELAY, arkd_simulator, gateway_process, write_config
from .test_embedded_restart import HEX_KEY, embedded_process
from .test_faults import PASSPHRASE, boarded
from .wallet import ScriptedWallet

LIFT = 20_000
AMOUNT = 5_000
FEE = 10
#: Where the gateway is killed: right after the OK for this event of the ceremony.
KILL_POINTS = ("intent", "response_1", "response_2")


class SendsOnce(Wallet):
    """A wallet that trusts ``OK true``: what the relay acknowledged is never sent again,
    not even after a reconnect (the reference wallet resends, which would hide a loss)."""

    async def publish(self, event: Event, **kwargs: Any) -> None:
        await super().publish(event, **kwargs)
        self._sent.pop(event.id, None)


def gbtc(state: dict[str, Any]) -> int:
    """The spendable gBTC balance a sync_state reports, checked against its VTXO list."""
    spendable = [v for v in state["vtxos"] if v["status"] == "spendable"]
    total = sum(v["amount"] for v in spendable if v["ticker"] == "gBTC")
    assert sum(state["balances"].values()) == total, state
    return total


async def kill_and_restart(gateway) -> None:
    # Straight after the OK, with nothing in between: the acknowledged event is either
    # already durable for the core or lost.
    gateway.kill(signal.SIGKILL)
    await trio.sleep(1)  # the wallets see their connections drop
    await trio.to_thread.run_sync(gateway.start, "gateway running")


async def ceremony_with_a_kill(alice: SendsOnce, intent: Event, point: str, gateway) -> Any:
    session = session_id_for(intent.id)

    def mine(received) -> bool:
        return received.content.get("session_id") == session

    await alice.publish(intent)
    if point == "intent":
        await kill_and_restart(gateway)
    for step in (1, 2):
        challenge = await alice.next(Kind.CHALLENGE, match=mine, timeout=60)
        assert challenge.content["step_index"] == step
        await alice.answer(challenge)
        if point == f"response_{step}":
            await kill_and_restart(gateway)
    return await alice.wait_outcome(None, intent.id, timeout=60)


@pytest.mark.parametrize("point", KILL_POINTS)
async def test_acknowledged_event_survives_sigkill(tmp_path: Path, point: str) -> None:
    port = free_port()
    gateway = embedded_process(tmp_path, port)
    config = tmp_path / "gw.toml"
    # A short step deadline: a lost response shows as a 3002 expiry, not a long wait.
    text = config.read_text().replace("127.0.0.1:8080", f"127.0.0.1:{free_port()}")
    config.write_text(text + '[ceremony]\nstep_timeout = "30s"\n')
    gateway.start("gateway running")
    try:
        [gw] = HEX_KEY.findall(gateway.log.read_text())[:1]
        url = f"ws://127.0.0.1:{port}"
        async with (
            SendsOnce(url, gw, reconnect=True) as alice,
            Wallet(url, gw, reconnect=True) as bob,
        ):
            reply = await alice.call("lift_lightning", asset_id="gBTC", amount=LIFT)
            pay = [str(ARKRELAY), "sim", "ln", "pay", "--data-dir", str(tmp_path / "data")]
            paid = await trio.run_process(
                [*pay, reply["invoice"]], capture_stdout=True, capture_stderr=True
            )
            assert json.loads(paid.stdout)["status"] == "succeeded", paid.stderr
            lift_d = ["d", f"lift:{reply['payment_hash']}"]
            await alice.next(Kind.CONFIRMATION, match=lambda r: lift_d in r.event.tags, timeout=60)

            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey, AMOUNT))
            outcome = await ceremony_with_a_kill(alice, intent, point, gateway)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            assert gateway.starts == 2

            # Balances exact, and alice's change is spendable (no input left locked): she
            # spends all of it in a second transfer.
            assert gbtc(await bob.call("sync_state")) == AMOUNT
            alice_state = await alice.call("sync_state")
            change = LIFT - AMOUNT - FEE
            assert gbtc(alice_state) == change
            assert all(v["status"] in ("spendable", "spent") for v in alice_state["vtxos"])
            again = alice.intent("ark:transfer", transfer_params(bob.pubkey, change - FEE))
            second = await alice.run_ceremony(again, timeout=60)
            assert second.event.kind == Kind.CONFIRMATION, second.content
            assert gbtc(await bob.call("sync_state")) == LIFT - 2 * FEE
            assert gbtc(await alice.call("sync_state")) == 0
    finally:
        gateway.kill()


#: How far back a resubscription reaches before the newest event it resumes from.
WINDOW_S = 2


async def test_relay_pool_event_the_gateway_had_not_recorded_is_fetched_again(
    tmp_path: Path, relay
) -> None:
    alice_secret, bob_secret = bip340.generate_secret_key(), bip340.generate_secret_key()
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
        extra='step_timeout = "30s"',
    )
    text = config.read_text()
    config.write_text(
        text.replace('plugin = "relays"\n', f'plugin = "relays"\nresubscribe_window = {WINDOW_S}\n')
    )
    gateway = gateway_process(config)
    try:
        await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
        [vtxo] = boarded(sim.log, alice_pub)
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        async with (
            ScriptedWallet(relay.url, key.pubkey, secret=alice_secret) as alice,
            ScriptedWallet(relay.url, key.pubkey, secret=bob_secret) as bob,
        ):
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey, vtxo_ids=[vtxo]))
            session = session_id_for(intent.id)

            def mine(received) -> bool:
                return received.content.get("session_id") == session

            await alice.publish(intent)
            await alice.answer(await alice.next(Kind.CHALLENGE, match=mine, timeout=60))
            last = await alice.next(Kind.CHALLENGE, match=mine, timeout=60)
            # Frozen, the gateway cannot record the answer the relay is about to take and
            # pass on; killed once the wallet has the relay's OK, it never will.
            assert gateway.popen is not None
            os.killpg(gateway.popen.pid, signal.SIGSTOP)
            try:
                await alice.answer(last)
            finally:
                await trio.to_thread.run_sync(gateway.kill)
            # Down for longer than the window: resuming from "now" would skip the answer.
            await trio.sleep(3 * WINDOW_S)
            await trio.to_thread.run_sync(gateway.start, "gateway running")

            outcome = await alice.wait_outcome(None, intent.id, timeout=60)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            assert gbtc(await bob.call("sync_state")) == 1_000
            alice_state = await alice.call("sync_state")
            assert gbtc(alice_state) == 5_000 - 1_000 - FEE
            assert all(v["status"] in ("spendable", "spent") for v in alice_state["vtxos"])
        assert gateway.starts == 2
    finally:
        gateway.kill()
        sim.kill()
