"""Atomic swap batches (PROTOCOL.md §4) and VTXO splits."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import trio

from arkrelay_core.codes import ErrorCode
from arkrelay_core.protocol import Kind
from arkrelay_core.store.models import Vtxo as VtxoRow

from .harness import board, running_gateway
from .outcomes import outcomes_for
from .wallet import ScriptedWallet

GBTC = "gBTC"
USDX_ID = "cd" * 32
ASSETS = f'[[ceremony.assets]]\nticker = "USDX"\nasset_id = "{USDX_ID}"\nname = "Test dollar"\n'


def colour(gateway, vtxo, asset_id: str) -> None:
    """The operator's ledger says this VTXO carries ``asset_id`` (as a mint would)."""
    with gateway._sessions() as db:
        db.add(
            VtxoRow(
                vtxo_id=vtxo.vtxo_id,
                owner=vtxo.owner,
                asset_id=asset_id,
                amount=vtxo.amount,
                status="spendable",
                expires_at=vtxo.expires_at,
                created_at=int(time.time()),
            )
        )
        db.commit()


def leg(wallet: ScriptedWallet, asset: str, amount: int, to: str, batch_id: str, **kw):
    params = {
        "asset_id": asset,
        "amount": amount,
        "recipient_pubkey": to,
        "batch_id": batch_id,
        "fee": {"asset_id": GBTC, "amount": 10},
    }
    return wallet.intent("ark:swap_leg", params, **kw)


async def two_leg_batch(gateway, alice: ScriptedWallet, bob: ScriptedWallet, batch_id: str):
    """Fund both, and have alice submit a gBTC swap: 1000 to bob, 900 back."""
    await board(gateway, alice.pubkey, 5_000)
    await board(gateway, bob.pubkey, 5_000)
    a = leg(alice, GBTC, 1_000, bob.pubkey, batch_id)
    b = leg(bob, GBTC, 900, alice.pubkey, batch_id)
    await alice.call(
        "submit_batch", batch_id=batch_id, intents=[msgspec.to_builtins(a), msgspec.to_builtins(b)]
    )
    return a, b


async def test_swap_batch_executes_in_one_ark_transaction(
    tmp_path: Path, relay, db_url: str
) -> None:
    gateway_dir = tmp_path / "gw"
    async with running_gateway(gateway_dir, relay.url, extra=ASSETS, database=db_url) as gateway:
        gw = gateway.identity.pubkey
        async with (
            ScriptedWallet(relay.url, gw) as alice,
            ScriptedWallet(relay.url, gw) as bob,
            ScriptedWallet(relay.url, gw) as solver,
        ):
            await board(gateway, alice.pubkey, 5_000)
            colour(gateway, await board(gateway, bob.pubkey, 2_000), USDX_ID)
            await board(gateway, bob.pubkey, 1_000)  # pays bob's fee in gBTC
            a = leg(alice, GBTC, 1_000, bob.pubkey, "swap-1")
            b = leg(bob, "USDX", 1_500, alice.pubkey, "swap-1")
            reply = await solver.call(
                "submit_batch",
                batch_id="swap-1",
                intents=[msgspec.to_builtins(a), msgspec.to_builtins(b)],
            )
            assert reply["status"] == "pending" and len(reply["session_ids"]) == 2
            outcomes = {}
            async with trio.open_nursery() as nursery:

                async def run(wallet, intent) -> None:
                    outcomes[wallet.pubkey] = await wallet.run_ceremony(intent, publish=False)

                nursery.start_soon(run, alice, a)
                nursery.start_soon(run, bob, b)
            first, second = outcomes[alice.pubkey], outcomes[bob.pubkey]
            assert first.event.id == second.event.id  # one 31340 for the whole batch
            assert first.event.kind == Kind.CONFIRMATION
            content = first.content
            assert content["batch_id"] == "swap-1"
            assert ["d", "batch:swap-1"] in first.event.tags
            assert {a.id, b.id} <= {t[1] for t in first.event.tags if t[0] == "e"}
            got = {(m["owner"], m["asset_id"], m["amount"]) for m in content["created"]}
            assert (bob.pubkey, gateway.engine.assets.gbtc.asset_id, 1_000) in got
            assert (alice.pubkey, USDX_ID, 1_500) in got
            assert (bob.pubkey, USDX_ID, 500) in got  # bob's change stays USDX
            sync = await alice.call("sync_state", asset_id="USDX")
            assert sync["balances"] == {USDX_ID: 1_500}


async def test_unbalanced_batch_is_3001_to_every_author(tmp_path: Path, relay) -> None:
    async with running_gateway(tmp_path / "gw", relay.url) as gateway:
        gw = gateway.identity.pubkey
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            stranger = "ef" * 32
            a = leg(alice, GBTC, 1_000, stranger, "bad-1")
            b = leg(bob, GBTC, 1_000, alice.pubkey, "bad-1")
            request = bob.request(
                "submit_batch",
                batch_id="bad-1",
                intents=[msgspec.to_builtins(a), msgspec.to_builtins(b)],
            )
            await bob.publish(request)
            for wallet, intent in ((alice, a), (bob, b)):
                notice = await wallet.wait_outcome(None, intent.id)
                assert notice.content["code"] == ErrorCode.BATCH_INVALID


async def test_a_leg_that_fails_fails_the_batch_with_3005(tmp_path: Path, relay) -> None:
    async with running_gateway(tmp_path / "gw", relay.url) as gateway:
        gw = gateway.identity.pubkey
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            a, b = await two_leg_batch(gateway, alice, bob, "b-2")
            challenge = await bob.next(Kind.CHALLENGE)
            await bob.answer(challenge, signature="11" * 64)  # bob sabotages his leg
            mine = await bob.wait_outcome(None, b.id)
            theirs = await alice.wait_outcome(None, a.id)
            assert mine.content["code"] == ErrorCode.INVALID_SIGNING_RESPONSE
            assert theirs.content["code"] == ErrorCode.BATCH_COUNTERPARTY_FAILED
            ark = gateway.components.backends["ark"]
            assert [v.amount for v in await ark.list_vtxos(alice.pubkey)] == [5_000]
            assert [k for k, _ in outcomes_for(gateway, a.id)] == [Kind.FAILURE]


async def test_split_divides_one_vtxo(tmp_path: Path, relay) -> None:
    async with (
        running_gateway(tmp_path / "gw", relay.url) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as alice,
    ):
        vtxo = await board(gateway, alice.pubkey, 3_000)
        intent = alice.intent(
            "vtxo:split",
            {
                "vtxo_id": vtxo.vtxo_id,
                "asset_id": GBTC,
                "split_amounts": [1_000, 1_000, 990],
                "fee": {"asset_id": GBTC, "amount": 10},
            },
        )
        outcome = await alice.run_ceremony(intent)
        assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
        ark = gateway.components.backends["ark"]
        amounts = sorted(v.amount for v in await ark.list_vtxos(alice.pubkey))
        assert amounts == [990, 1_000, 1_000]


async def test_a_leg_that_times_out_fails_the_batch_with_3005(tmp_path: Path, relay) -> None:
    extra = '[ceremony]\nstep_timeout = "3s"\n'
    async with (
        running_gateway(tmp_path / "gw", relay.url, extra=extra) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as alice,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as bob,
    ):
        a, b = await two_leg_batch(gateway, alice, bob, "b-3")
        await bob.next(Kind.CHALLENGE)  # bob goes quiet
        theirs = await alice.run_ceremony(a, publish=False)
        mine = await bob.wait_outcome(None, b.id)
        assert mine.content["code"] == ErrorCode.SIGNING_TIMEOUT
        assert theirs.content["code"] == ErrorCode.BATCH_COUNTERPARTY_FAILED
