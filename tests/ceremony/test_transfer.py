"""Transfers and splits end to end: a scripted wallet, a real relay, the simulators."""

from __future__ import annotations

from pathlib import Path

from arkrelay_core.codes import ErrorCode
from arkrelay_core.protocol import Kind

from .harness import board, running_gateway
from .outcomes import transfer_params
from .wallet import ScriptedWallet

GBTC = "gBTC"


async def test_transfer_confirms_and_moves_the_vtxos(tmp_path: Path, relay) -> None:
    async with running_gateway(tmp_path / "gw", relay.url) as gateway:
        gw = gateway.identity.pubkey
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            funded = await board(gateway, alice.pubkey, 5_000)
            intent = alice.intent(
                "ark:transfer",
                transfer_params(bob.pubkey),
            )
            outcome = await alice.run_ceremony(intent)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            content = outcome.content
            assert content["ref_action_id"] == intent_action_id(intent)
            assert [m["vtxo_id"] for m in content["spent"]] == [funded.vtxo_id]
            created = {(m["owner"], m["amount"]) for m in content["created"]}
            assert created == {(bob.pubkey, 1_000), (gw, 10), (alice.pubkey, 3_990)}
            assert content["fee_paid"]["amount"] == 10
            bob_vtxos = await gateway.components.backends["ark"].list_vtxos(bob.pubkey)
            assert [v.amount for v in bob_vtxos] == [1_000]
            status = await alice.call("get_status", action_id=intent_action_id(intent))
            assert status["state"] == "completed"

            # Each wallet reads its own VTXOs from the Ark server (the URL get_info names):
            # the same VTXOs and balance as the gateway's sync_state.
            info = await alice.call("get_info")
            assert info["ark"]["server_url"].startswith("http://127.0.0.1:")
            gbtc = next(a["asset_id"] for a in info["assets"] if a["ticker"] == GBTC)
            for wallet, balance in ((alice, 3_990), (bob, 1_000)):
                checked = await wallet.check_with_server()
                assert checked.problems == []
                assert checked.server_balance == checked.state["balances"][gbtc] == balance
            [bobs] = (await bob.check_with_server()).server
            created_for_bob = [m for m in content["created"] if m["owner"] == bob.pubkey]
            assert bobs.vtxo_id == created_for_bob[0]["vtxo_id"]


async def test_insufficient_balance_is_2001(tmp_path: Path, relay) -> None:
    async with running_gateway(tmp_path / "gw", relay.url) as gateway:
        gw = gateway.identity.pubkey
        async with ScriptedWallet(relay.url, gw) as alice:
            await board(gateway, alice.pubkey, 500)
            intent = alice.intent(
                "ark:transfer",
                transfer_params("ab" * 32),
            )
            outcome = await alice.run_ceremony(intent)
            assert outcome.event.kind == Kind.FAILURE
            assert outcome.content["code"] == ErrorCode.INSUFFICIENT_BALANCE


def intent_action_id(event) -> str:
    import json

    return json.loads(event.content)["action_id"]


async def test_a_nip04_wallet_is_answered_in_nip04(tmp_path: Path, relay) -> None:
    async with (
        running_gateway(tmp_path / "gw", relay.url) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as alice,
    ):
        alice.nip04()
        await board(gateway, alice.pubkey, 5_000)
        info = await alice.call("get_info")
        assert info["service_pubkey"] == gateway.identity.pubkey
        assert [a["ticker"] for a in info["assets"]] == ["gBTC"]
        intent = alice.intent("ark:transfer", transfer_params("ab" * 32))
        await alice.publish(intent)
        challenge = await alice.next(Kind.CHALLENGE)
        assert challenge.scheme == "nip04"
        await alice.answer(challenge)
        outcome = await alice.run_ceremony(intent, publish=False)
        assert outcome.event.kind == Kind.CONFIRMATION
