"""PROTOCOL.md §3, who can affect a session: anyone can read a 31511's public tags and
publish a 31512 with the same `d`; only the intent's author, answering the current step,
moves the session. The real gateway, a real relay, real keys."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from arkrelay_core.protocol import Kind, session_id_for

from .harness import board, running_gateway
from .observer import Observer, addressed_to, wait_handled
from .outcomes import action_id, outcomes_for, transfer_params
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
