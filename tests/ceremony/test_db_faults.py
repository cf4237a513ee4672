"""Database errors do not take the gateway down (issue #17).

The gateway runs on PostgreSQL with a short ``lock_timeout``; the test holds the session's
row the way another instance's transaction would, so the gateway's transactions on it fail
for real (lock_not_available) while the wallet's answer is handled.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import trio
from sqlalchemy.engine import make_url

from arkrelay_core.protocol import Kind
from arkrelay_core.store import create_engine_for

from .harness import board, running_gateway
from .outcomes import transfer_params
from .wallet import ScriptedWallet

pytestmark = pytest.mark.postgres


def _with_lock_timeout(url: str, ms: int) -> str:
    return (
        make_url(url)
        .update_query_dict({"options": f"-c lock_timeout={ms}"})
        .render_as_string(hide_password=False)
    )


async def _until(condition, what: str) -> None:
    with trio.move_on_after(30):
        while not condition():  # noqa: ASYNC110 - the gateway's counters cannot be awaited
            await trio.sleep(0.05)
        return
    raise AssertionError(f"gave up waiting for {what}")


async def test_a_lock_conflict_on_the_session_is_retried_and_the_ceremony_completes(
    tmp_path: Path, relay, postgres_url
) -> None:
    database = _with_lock_timeout(postgres_url, 200)
    async with running_gateway(tmp_path / "gw", relay.url, database=database) as gateway:
        gw = gateway.identity.pubkey
        async with ScriptedWallet(relay.url, gw) as alice:
            await board(gateway, alice.pubkey, 5_000)
            intent = alice.intent("ark:transfer", transfer_params("ab" * 32))
            await alice.publish(intent)
            challenge = await alice.next(Kind.CHALLENGE)
            rival = create_engine_for(postgres_url)
            holder = rival.connect()
            try:
                holder.execute(sa.text("select id from sessions for update"))
                await alice.answer(challenge)
                await _until(
                    lambda: gateway.db_errors.snapshot().get("engine", 0) >= 2,
                    "the gateway meeting the held lock",
                )
                holder.rollback()
            finally:
                holder.close()
                rival.dispose()
            outcome = await alice.run_ceremony(intent, publish=False)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            status = await alice.call("get_status", action_id=outcome.content["ref_action_id"])
            assert status["state"] == "completed"
        assert gateway.statistics()["db_errors"]["engine"] >= 2


async def test_a_lock_held_past_every_retry_costs_one_step_not_the_gateway(
    tmp_path: Path, relay, postgres_url
) -> None:
    database = _with_lock_timeout(postgres_url, 50)
    async with running_gateway(tmp_path / "gw", relay.url, database=database) as gateway:
        gw = gateway.identity.pubkey
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as carol:
            await board(gateway, alice.pubkey, 5_000)
            await board(gateway, carol.pubkey, 5_000)
            intent = alice.intent("ark:transfer", transfer_params("ab" * 32))
            await alice.publish(intent)
            challenge = await alice.next(Kind.CHALLENGE)
            rival = create_engine_for(postgres_url)
            holder = rival.connect()
            try:
                holder.execute(sa.text("select id from sessions for update"))
                await alice.answer(challenge)
                # Every try of the step fails, then the task gives up (counted once more).
                await _until(
                    lambda: gateway.db_errors.snapshot().get("engine", 0) >= 8,
                    "the gateway giving up on the held session",
                )
                holder.rollback()
            finally:
                holder.close()
                rival.dispose()
            # Still serving: another wallet's ceremony goes through.
            other = carol.intent("ark:transfer", transfer_params("cd" * 32))
            outcome = await carol.run_ceremony(other)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
