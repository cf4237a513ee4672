"""Twenty honest transfers with an observer answering every challenge (PROTOCOL.md §3):
all complete, balances exact, and /metrics counts every response the gateway ignored.
The real gateway with its HTTP API, a real nostr-relay process in between. And the
operator's cancel after SubmitTx, which must hand the pending transaction over."""

from __future__ import annotations

from pathlib import Path

import trio

from arkrelay_core.codes import ErrorCode
from arkrelay_core.protocol import Kind, session_id_for
from plugins.nostr.tests.relay_process import NostrRelay
from tests.ceremony.harness import board
from tests.ceremony.observer import Observer, addressed_to, wait_handled
from tests.ceremony.outcomes import action_id, transfer_params
from tests.ceremony.test_third_parties import (
    challenge_for,
    finalize_as_the_wallet,
    signed_answer,
)
from tests.ceremony.wallet import ScriptedWallet

from .conftest import running_api
from .test_metrics import scrape

TRANSFERS = 20


async def test_an_observer_at_every_challenge_changes_nothing_and_is_counted(
    tmp_path: Path,
) -> None:
    relay = NostrRelay(tmp_path / "relay")
    relay.start()
    try:
        extra = f'[transport.relays]\nplugin = "relays"\nrelays = ["{relay.url}"]\n'
        with trio.fail_after(300):
            async with running_api(tmp_path / "gw", extra=extra) as api:
                await _twenty_transfers(api, relay.url)
    finally:
        relay.stop()


async def _twenty_transfers(api, relay_url: str) -> None:
    gateway = api.gateway
    gw = gateway.identity.pubkey
    ark = gateway.components.backends["ark"]
    observer = Observer(gw)
    async with (
        ScriptedWallet(relay_url, gw) as alice,
        ScriptedWallet(relay_url, gw) as bob,
        ScriptedWallet(relay_url, gw, secret=observer.secret) as mallory,
    ):
        await board(gateway, alice.pubkey, 50_000)
        for number in range(TRANSFERS):
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey, 1_000 + number))
            await alice.publish(intent)
            first = None
            for step in (1, 2):
                challenge = await challenge_for(alice, intent, step)
                hostile = observer.attacks(challenge, alice.pubkey)
                if first is not None:  # the author's own late resend of step 1: ignored too
                    hostile.append(signed_answer(alice, first, at=challenge.event.created_at + 3))
                for event in hostile:
                    await (mallory if event.pubkey == observer.pubkey else alice).publish(event)
                await wait_handled(gateway, [e.id for e in hostile])
                await alice.answer(challenge)
                first = challenge
            outcome = await alice.wait_outcome(action_id(intent), intent.id)
            assert outcome.event.kind == Kind.CONFIRMATION, (number, outcome.content)

        sent = sum(1_000 + n for n in range(TRANSFERS))
        assert sum(v.amount for v in await ark.list_vtxos(bob.pubkey)) == sent
        mine = await ark.list_vtxos(alice.pubkey)
        assert sum(v.amount for v in mine) == 50_000 - sent - 10 * TRANSFERS
    assert addressed_to(gateway, observer.pubkey) == []

    found = await scrape(api)
    counted = {
        s["reason"]: found.value("arkrelay_responses_ignored_total", **s)
        for s in found.series("arkrelay_responses_ignored_total")
    }
    assert counted == {
        "not_author": 2 * 2 * TRANSFERS,  # forged + own key, at both steps
        "undecryptable": 2 * TRANSFERS,
        "not_current": TRANSFERS,
        "malformed": 0,
        "mismatched_d": 0,
        "closed_session": 0,
    }
    assert (
        found.value(
            "arkrelay_failures_total",
            code="3003",
            reason="invalid_signing_response",
            stage="session",
        )
        is None
    )
    assert found.value("arkrelay_rechallenges_total") == 0


async def test_cancelling_after_submit_hands_the_tx_to_the_wallet(api) -> None:
    """The operator's cancel is a gateway decision too: after SubmitTx it may end the
    session (3004) only by handing the pending transaction over, which the wallet then
    finalizes itself; nothing stays locked."""
    gateway = api.gateway
    gw = gateway.identity.pubkey
    ark = gateway.components.backends["ark"]
    with trio.fail_after(120):
        async with (
            ScriptedWallet(api.relay_url, gw) as alice,
            ScriptedWallet(api.relay_url, gw) as bob,
        ):
            await board(gateway, alice.pubkey, 5_000)
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey))
            await alice.publish(intent)
            await alice.answer(await challenge_for(alice, intent, 1))
            await challenge_for(alice, intent, 2)
            session_id = session_id_for(intent.id)
            response = await api.admin("POST", f"/admin/sessions/{session_id}/cancel")
            assert response.status_code == 200, response.text
            assert response.json()["session"]["state"] == "cancelled"

            outcome = await alice.wait_outcome(action_id(intent), intent.id)
            assert outcome.content["code"] == ErrorCode.SESSION_CANCELLED
            assert outcome.content["retryable"] is False
            pending = outcome.content["pending_tx"]
            await trio.to_thread.run_sync(finalize_as_the_wallet, ark.target, alice.secret, pending)
            assert [v.amount for v in await ark.list_vtxos(bob.pubkey)] == [1_000]
            assert [v.amount for v in await ark.list_vtxos(alice.pubkey)] == [3_990]
            again = alice.intent("ark:transfer", transfer_params(bob.pubkey, 500))
            assert (await alice.run_ceremony(again)).event.kind == Kind.CONFIRMATION
