"""PROTOCOL.md §3, who can affect a session: anyone can read a 31511's public tags and
publish a 31512 with the same `d`; only the intent's author, answering the current step,
moves the session. The real gateway, a real relay, real keys."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
import msgspec
import pytest
import trio
from arkrelay_arkd import arktx
from arkrelay_arkd._proto.ark.v1 import service_pb2, service_pb2_grpc

from arkrelay_core.codes import ErrorCode
from arkrelay_core.nostr import bip340, decrypt_dm, first_tag_value
from arkrelay_core.protocol import Kind, PendingArkTx, session_id_for

from .harness import board, running_gateway
from .observer import Observer, addressed_to, response_event, wait_handled
from .outcomes import action_id, outcomes_for, transfer_params
from .test_batches import ASSETS, USDX_ID, colour, two_leg_batch
from .wallet import Received, ScriptedWallet

SHORT_STEPS = '[ceremony]\nstep_timeout = "5s"\n'


def ignored(gateway, reason: str) -> int:
    return gateway.engine.stats[f"responses_ignored_{reason}"]


async def challenge_for(wallet: ScriptedWallet, intent, step: int) -> Received:
    session_id = session_id_for(intent.id)

    def this_step(r: Received) -> bool:
        return r.content.get("session_id") == session_id and r.content.get("step_index") == step

    return await wallet.next(Kind.CHALLENGE, match=this_step, timeout=15)


async def attacked_transfer(
    gateway,
    alice: ScriptedWallet,
    mallory: ScriptedWallet,
    observer: Observer,
    intent,
    roles: Sequence[str],
) -> Received:
    """Run ``intent``'s two steps; before alice answers a step whose ``tx_role`` is in
    ``roles``, the observer's three responses reach the gateway and are handled."""
    await alice.publish(intent)
    for step in (1, 2):
        challenge = await challenge_for(alice, intent, step)
        if challenge.content["context"]["tx_role"] in roles:
            attacks = observer.attacks(challenge, alice.pubkey)
            for event in attacks:
                await mallory.publish(event)
            await wait_handled(gateway, [e.id for e in attacks])
        await alice.answer(challenge)
    return await alice.wait_outcome(action_id(intent), intent.id, timeout=30)


@pytest.mark.parametrize(
    "roles",
    [("ark_tx",), ("checkpoint",)],
    ids=["before-submit", "after-submit"],
)
async def test_an_observer_cannot_fail_a_session(tmp_path: Path, relay, roles) -> None:
    """The issue's reproduction: a fresh key answers the challenge with the same `d` (a
    forged signature, a valid one of its own key, junk). Before the fix the first of these
    failed the session with 3003; after SubmitTx that froze alice's funds."""
    async with running_gateway(tmp_path / "gw", relay.url, extra=SHORT_STEPS) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        observer = Observer(gw)
        async with (
            ScriptedWallet(relay.url, gw) as alice,
            ScriptedWallet(relay.url, gw) as bob,
            ScriptedWallet(relay.url, gw, secret=observer.secret) as mallory,
        ):
            await board(gateway, alice.pubkey, 5_000)
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey))
            outcome = await attacked_transfer(gateway, alice, mallory, observer, intent, roles)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            assert [v.amount for v in await ark.list_vtxos(bob.pubkey)] == [1_000]
            assert sum(v.amount for v in await ark.list_vtxos(alice.pubkey)) == 3_990
            assert [k for k, _ in outcomes_for(gateway, intent.id)] == [Kind.CONFIRMATION]
        # Never answered: nothing the gateway sends names the observer.
        assert addressed_to(gateway, observer.pubkey) == []
        assert ignored(gateway, "not_author") == 2
        assert ignored(gateway, "undecryptable") == 1


def signed_answer(wallet: ScriptedWallet, challenge: Received, *, at: int, signature=None):
    """The author's own 31512 for ``challenge``, sent at ``at`` (several answers to one
    step must differ in created_at, or relays keep only one of them)."""
    c = challenge.content
    digest = bytes.fromhex(c["payload_to_sign"])
    content = {
        "session_id": c["session_id"],
        "type": c["type"],
        "signature": signature or bip340.schnorr_sign(wallet.secret, digest).hex(),
        "payload_ref": c["payload_ref"],
        "algo": "BIP340",
        "pubkey": wallet.pubkey,
    }
    d = f"{c['session_id']}:{c['step_index']}"
    return response_event(wallet.secret, wallet.gateway_pubkey, content, d, created_at=at)


async def test_the_authors_answer_to_another_step_is_ignored(tmp_path: Path, relay) -> None:
    """A resend of step 1 after step 2 was challenged (normal after a restart), and an
    answer whose `d` names another session than its content: both ignored."""
    async with running_gateway(tmp_path / "gw", relay.url, extra=SHORT_STEPS) as gateway:
        gw = gateway.identity.pubkey
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            await board(gateway, alice.pubkey, 5_000)
            other = alice.intent("ark:transfer", transfer_params(bob.pubkey, 500))
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey))
            await alice.publish(intent)
            first = await challenge_for(alice, intent, 1)
            await alice.answer(first)
            second = await challenge_for(alice, intent, 2)
            now = int(time.time())
            resend = signed_answer(alice, first, at=now + 1)
            elsewhere = signed_answer(alice, second, at=now + 1)
            moved = response_event(
                alice.secret,
                gw,
                {**_decrypted(alice, elsewhere), "session_id": session_id_for(other.id)},
                first_tag_value(elsewhere, "d"),
                created_at=now + 2,
            )
            for event in (resend, moved):
                await alice.publish(event)
            await wait_handled(gateway, [resend.id, moved.id])
            assert ignored(gateway, "not_current") == 1
            assert ignored(gateway, "mismatched_d") == 1
            await alice.publish(signed_answer(alice, second, at=now + 3))
            outcome = await alice.wait_outcome(action_id(intent), intent.id)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content


def _decrypted(wallet: ScriptedWallet, event) -> dict:
    text, _ = decrypt_dm(wallet.secret, wallet.gateway_pubkey, event.content)
    return json.loads(text)


async def test_a_bad_checkpoint_signature_is_challenged_again(tmp_path: Path, relay) -> None:
    """After SubmitTx the author's bad signature fails nothing: the same step comes again
    (same payload, same `d`, a new event), as often as it takes."""
    async with running_gateway(tmp_path / "gw", relay.url, extra=SHORT_STEPS) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            await board(gateway, alice.pubkey, 5_000)
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey))
            await alice.publish(intent)
            await alice.answer(await challenge_for(alice, intent, 1))
            challenge = await challenge_for(alice, intent, 2)
            assert challenge.content["context"]["tx_role"] == "checkpoint"
            seen = [challenge]
            now = int(time.time())
            for attempt in range(2):
                bad = signed_answer(alice, seen[-1], at=now + attempt + 1, signature="22" * 64)
                await alice.publish(bad)
                seen.append(await challenge_for(alice, intent, 2))
            assert len({c.event.id for c in seen}) == 3
            for again in seen[1:]:
                assert again.content["payload_to_sign"] == challenge.content["payload_to_sign"]
                assert first_tag_value(again.event, "d") == first_tag_value(challenge.event, "d")
                assert again.event.created_at > challenge.event.created_at
            assert gateway.engine.stats["rechallenges"] == 2
            await alice.publish(signed_answer(alice, seen[-1], at=now + 3))
            outcome = await alice.wait_outcome(action_id(intent), intent.id)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            assert [v.amount for v in await ark.list_vtxos(bob.pubkey)] == [1_000]


def finalize_as_the_wallet(target: str, secret: bytes, pending: dict) -> None:
    """What a wallet does with a 31341's ``pending_tx``: sign its checkpoint inputs and
    call the Ark server's FinalizeTx itself, over gRPC (in a worker thread)."""
    mine = bip340.xonly_public_key(secret)
    finals = []
    for b64 in pending["checkpoint_txs"]:
        packet = arktx.decode_psbt(b64)
        if mine in arktx.signature_keys(packet, 0):
            arktx.sign_input(packet, 0, secret)
        finals.append(arktx.encode_psbt(packet))
    with grpc.insecure_channel(target) as channel:
        service_pb2_grpc.ArkServiceStub(channel).FinalizeTx(
            service_pb2.FinalizeTxRequest(
                ark_txid=pending["ark_txid"], final_checkpoint_txs=finals
            ),
            timeout=10,
        )


async def test_at_the_deadline_after_submit_the_wallet_gets_the_tx(tmp_path: Path, relay) -> None:
    """The author signs the ark tx and never a checkpoint: the step is challenged again
    while the session lasts, then the session ends with 3002 carrying the pending tx. The
    wallet finalizes it against arkd itself; its money is where the intent said, and
    nothing stays locked on the gateway's side (its next intent goes through)."""
    timing = '[ceremony]\nstep_timeout = "2s"\nsession_timeout = "7s"\n'
    async with running_gateway(tmp_path / "gw", relay.url, extra=timing) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            await board(gateway, alice.pubkey, 5_000)
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey))
            await alice.publish(intent)
            await alice.answer(await challenge_for(alice, intent, 1))
            first = await challenge_for(alice, intent, 2)
            again = await challenge_for(alice, intent, 2)  # the step ran out: asked again
            assert again.event.id != first.event.id
            assert again.content["payload_to_sign"] == first.content["payload_to_sign"]
            outcome = await alice.wait_outcome(action_id(intent), intent.id, timeout=30)
            assert outcome.event.kind == Kind.FAILURE
            assert outcome.content["code"] == ErrorCode.SIGNING_TIMEOUT
            pending = outcome.content["pending_tx"]
            msgspec.convert(pending, PendingArkTx)
            assert [t for t, _, _ in ark.simulator.ledger.pending_txs()] == [pending["ark_txid"]]
            status = await alice.call("get_status", action_id=action_id(intent))
            assert status["state"] == "expired"
            # Until the wallet acts, its VTXO is spent-pending at the Ark server.
            assert await ark.list_vtxos(alice.pubkey) == []

            await trio.to_thread.run_sync(finalize_as_the_wallet, ark.target, alice.secret, pending)
            assert ark.simulator.ledger.pending_txs() == []
            assert [v.amount for v in await ark.list_vtxos(bob.pubkey)] == [1_000]
            assert [v.amount for v in await ark.list_vtxos(alice.pubkey)] == [3_990]
            fee = await ark.get_vtxos([f"{pending['ark_txid']}:1"])
            assert [(v.amount, v.owner) for v in fee] == [(10, gw)]

            # The gateway holds nothing back: the change is spendable through it at once.
            later = alice.intent("ark:transfer", transfer_params(bob.pubkey, 2_000))
            done = await alice.run_ceremony(later)
            assert done.event.kind == Kind.CONFIRMATION, done.content
            assert sorted(v.amount for v in await ark.list_vtxos(bob.pubkey)) == [1_000, 2_000]
            assert [v.amount for v in await ark.list_vtxos(alice.pubkey)] == [1_980]


async def test_an_observer_cannot_touch_a_batch_leg(tmp_path: Path, relay) -> None:
    """The same attacks on every challenge of both legs of a swap batch (before and after
    SubmitTx): the batch completes, and no leg fails the other."""
    async with running_gateway(tmp_path / "gw", relay.url, extra=SHORT_STEPS) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        observer = Observer(gw)
        async with (
            ScriptedWallet(relay.url, gw) as alice,
            ScriptedWallet(relay.url, gw) as bob,
            ScriptedWallet(relay.url, gw, secret=observer.secret) as mallory,
        ):
            a, b = await two_leg_batch(gateway, alice, bob, "watched")

            async def leg_of(wallet: ScriptedWallet, intent) -> Received:
                for step in (1, 2):
                    challenge = await challenge_for(wallet, intent, step)
                    attacks = observer.attacks(challenge, wallet.pubkey)
                    for event in attacks:
                        await mallory.publish(event)
                    await wait_handled(gateway, [e.id for e in attacks])
                    await wallet.answer(challenge)
                return await wallet.wait_outcome(None, intent.id)

            outcomes = {}
            async with trio.open_nursery() as nursery:

                async def run(wallet, intent) -> None:
                    outcomes[wallet.pubkey] = await leg_of(wallet, intent)

                nursery.start_soon(run, alice, a)
                nursery.start_soon(run, bob, b)
            assert {o.event.kind for o in outcomes.values()} == {Kind.CONFIRMATION}
            assert sum(v.amount for v in await ark.list_vtxos(alice.pubkey)) == 5_000 - 1_010 + 900
            assert sum(v.amount for v in await ark.list_vtxos(bob.pubkey)) == 5_000 - 910 + 1_000
        assert addressed_to(gateway, observer.pubkey) == []
        assert ignored(gateway, "not_author") == 2 * 2 * 2
        assert ignored(gateway, "undecryptable") == 2 * 2


async def test_a_handed_over_tx_keeps_its_asset_colours(tmp_path: Path, relay) -> None:
    """A USDX transfer handed to its wallet at the deadline: once the wallet finalizes it,
    the gateway's ledger reads the created VTXOs as USDX (recorded at the hand-over)."""
    timing = '[ceremony]\nstep_timeout = "2s"\nsession_timeout = "6s"\n'
    async with running_gateway(tmp_path / "gw", relay.url, extra=timing + ASSETS) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            colour(gateway, await board(gateway, alice.pubkey, 3_000), USDX_ID)
            await board(gateway, alice.pubkey, 1_000)  # pays the fee in gBTC
            params = transfer_params(bob.pubkey, 1_200, asset_id="USDX")
            intent = alice.intent("ark:transfer", params)
            await alice.publish(intent)
            await alice.answer(await challenge_for(alice, intent, 1))
            await alice.answer(await challenge_for(alice, intent, 2))  # one of two inputs
            await challenge_for(alice, intent, 3)
            outcome = await alice.wait_outcome(action_id(intent), intent.id, timeout=30)
            pending = outcome.content["pending_tx"]
            assert len(pending["checkpoint_txs"]) == 2
            await trio.to_thread.run_sync(finalize_as_the_wallet, ark.target, alice.secret, pending)
            theirs = await bob.call("sync_state", asset_id="USDX")
            assert theirs["balances"] == {USDX_ID: 1_200}
            mine = await alice.call("sync_state")
            assert mine["balances"] == {USDX_ID: 1_800, gateway.engine.assets.gbtc.asset_id: 990}


async def test_a_flood_of_bad_checkpoint_answers_is_challenged_at_most_once_a_second(
    tmp_path: Path, relay
) -> None:
    """The author (a broken or hostile wallet) sends ten bad checkpoint answers at once:
    the gateway does not answer each with an event, nor date challenges ahead of the
    clock (relays refuse events from the future); the session still completes."""
    async with running_gateway(tmp_path / "gw", relay.url, extra=SHORT_STEPS) as gateway:
        gw = gateway.identity.pubkey
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            await board(gateway, alice.pubkey, 5_000)
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey))
            await alice.publish(intent)
            await alice.answer(await challenge_for(alice, intent, 1))
            challenge = await challenge_for(alice, intent, 2)
            start = time.time()
            base = int(start)
            flood = [
                signed_answer(alice, challenge, at=base + i, signature="44" * 64)
                for i in range(1, 11)
            ]
            for event in flood:
                await alice.publish(event)
            await wait_handled(gateway, [e.id for e in flood])
            newest = await challenge_for(alice, intent, 2)
            assert newest.event.created_at <= time.time() + 1
            assert 1 <= gateway.engine.stats["rechallenges"] <= int(time.time() - start) + 2
            await alice.publish(signed_answer(alice, newest, at=base + 11))
            outcome = await alice.wait_outcome(action_id(intent), intent.id)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
