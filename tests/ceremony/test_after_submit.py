"""After SubmitTx the gateway never gives a transaction up (PROTOCOL.md §3): the Ark server
stopped while finalizing is waited for, and a checkpoint signature FinalizeTx cannot use
is asked for again. Faults for real: the arkd simulator's gRPC server is stopped."""

from __future__ import annotations

from pathlib import Path

import grpc
import sqlalchemy as sa
import trio
from arkrelay_arkd._proto.ark.v1 import service_pb2, service_pb2_grpc

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import BackendUnavailable, CircuitOpen
from arkrelay_core.protocol import Kind, session_id_for
from arkrelay_core.store.models import CeremonySession, Challenge

from .harness import board, running_gateway
from .outcomes import action_id, outcomes_for, transfer_params
from .test_third_parties import challenge_for, signed_answer
from .wallet import ScriptedWallet

ARK = 'retries = 0\ncall_timeout = "2s"\nbreaker_failures = 2\nbreaker_reset = "1s"\n'
TIMING = '[ceremony]\nstep_timeout = "10s"\nsession_timeout = "2m"\n'


def session_state(gateway, session_id: str) -> str:
    with gateway._sessions() as db:
        return db.scalar(sa.select(CeremonySession.state).where(CeremonySession.id == session_id))


async def until(what: str, check) -> None:
    """Until ``check()`` holds (the gateway's tasks move on their own)."""
    with trio.move_on_after(60):
        while True:
            if check():
                return
            await trio.sleep(0.1)
    raise AssertionError(f"never saw {what}")


async def amounts_once_up(ark, owner: str) -> list:
    """``owner``'s VTXOs, read once the backend reaches arkd again."""
    with trio.move_on_after(30):
        while True:
            try:
                return await ark.list_vtxos(owner)
            except (BackendUnavailable, CircuitOpen):  # the channel reconnects with backoff
                await trio.sleep(0.2)
    raise AssertionError("the arkd backend's breaker never closed again")


async def test_arkd_down_at_finalize_then_a_refused_signature_is_asked_again(
    tmp_path: Path, relay
) -> None:
    async with running_gateway(
        tmp_path / "gw", relay.url, extra=TIMING, ark_settings=ARK
    ) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            await board(gateway, alice.pubkey, 5_000)
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey))
            session_id = session_id_for(intent.id)
            await alice.publish(intent)
            await alice.answer(await challenge_for(alice, intent, 1))
            checkpoint = await challenge_for(alice, intent, 2)

            await trio.to_thread.run_sync(ark.simulator.stop)
            await alice.answer(checkpoint)
            await until(
                "the session signed",
                lambda: session_state(gateway, session_id) == "signatures_collected",
            )
            failures = ark.caller.statistics()["failures"]
            await until(
                "finalizing tried again",
                lambda: ark.caller.statistics()["failures"] >= failures + 3,
            )
            assert session_state(gateway, session_id) == "signatures_collected"
            assert outcomes_for(gateway, intent.id) == []

            # While arkd is away, the stored checkpoint signature goes bad (the fault
            # FinalizeTx would refuse): the gateway asks the wallet for it again.
            with gateway._sessions() as db:
                db.execute(
                    sa.update(Challenge)
                    .where(Challenge.session_id == session_id, Challenge.step_index == 2)
                    .values(signature="33" * 64)
                )
                db.commit()
            await trio.to_thread.run_sync(ark.simulator.start)
            again = await challenge_for(alice, intent, 2)
            assert again.event.id != checkpoint.event.id
            assert again.content["payload_to_sign"] == checkpoint.content["payload_to_sign"]
            at = again.event.created_at + 1
            await alice.publish(signed_answer(alice, again, at=at))
            outcome = await alice.wait_outcome(action_id(intent), intent.id)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            assert [v.amount for v in await ark.list_vtxos(bob.pubkey)] == [1_000]
            assert [v.amount for v in await ark.list_vtxos(alice.pubkey)] == [3_990]
            assert [k for k, _ in outcomes_for(gateway, intent.id)] == [Kind.CONFIRMATION]


async def test_arkd_down_until_the_deadline_hands_over_a_fully_signed_tx(
    tmp_path: Path, relay
) -> None:
    """Every signature in, arkd away until the session's end: the 31341 3002 carries the
    checkpoints with the wallet's signatures in place, so FinalizeTx needs nothing more."""
    timing = '[ceremony]\nstep_timeout = "5s"\nsession_timeout = "8s"\n'
    async with running_gateway(
        tmp_path / "gw", relay.url, extra=timing, ark_settings=ARK
    ) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            await board(gateway, alice.pubkey, 5_000)
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey))
            await alice.publish(intent)
            await alice.answer(await challenge_for(alice, intent, 1))
            checkpoint = await challenge_for(alice, intent, 2)
            await trio.to_thread.run_sync(ark.simulator.stop)
            await alice.answer(checkpoint)
            outcome = await alice.wait_outcome(action_id(intent), intent.id, timeout=30)
            assert outcome.content["code"] == ErrorCode.SIGNING_TIMEOUT
            pending = outcome.content["pending_tx"]
            await trio.to_thread.run_sync(ark.simulator.start)

            def finalize() -> None:
                with grpc.insecure_channel(ark.target) as channel:
                    service_pb2_grpc.ArkServiceStub(channel).FinalizeTx(
                        service_pb2.FinalizeTxRequest(
                            ark_txid=pending["ark_txid"],
                            final_checkpoint_txs=pending["checkpoint_txs"],
                        ),
                        timeout=10,
                    )

            await trio.to_thread.run_sync(finalize)
            assert [v.amount for v in await amounts_once_up(ark, bob.pubkey)] == [1_000]
            assert [v.amount for v in await ark.list_vtxos(alice.pubkey)] == [3_990]
            assert session_state(gateway, session_id_for(intent.id)) == "expired"


async def test_a_quiet_wallet_finalizes_the_handed_over_tx_over_rest(tmp_path: Path, relay) -> None:
    """The wallet signs the ark tx and goes quiet: at the deadline the gateway hands the
    submitted tx over, and the Python wallet finalizes it with only the Ark server's URL
    (arkd's REST interface, get_info ``ark.server_url``), no gRPC."""
    timing = '[ceremony]\nstep_timeout = "2s"\nsession_timeout = "7s"\n'
    async with running_gateway(tmp_path / "gw", relay.url, extra=timing) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            await board(gateway, alice.pubkey, 5_000)
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey))
            await alice.publish(intent)
            await alice.answer(await challenge_for(alice, intent, 1))
            outcome = await alice.wait_outcome(action_id(intent), intent.id, timeout=30)
            assert outcome.content["code"] == ErrorCode.SIGNING_TIMEOUT
            assert await ark.list_vtxos(alice.pubkey) == []  # locked by the pending tx

            done = await alice.finalize_handed_over(outcome, timeout=10)
            assert done.ark_txid == outcome.content["pending_tx"]["ark_txid"]
            assert sorted(v.amount for v in done.created) == [10, 1_000, 3_990]
            assert ark.simulator.ledger.pending_txs() == []
            assert [v.amount for v in await ark.list_vtxos(bob.pubkey)] == [1_000]
            assert [v.amount for v in await ark.list_vtxos(alice.pubkey)] == [3_990]
            # Nothing is left for the recovery path to find.
            assert await alice.finalize_at_server(timeout=10) == []
