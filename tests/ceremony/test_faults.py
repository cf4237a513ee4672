"""The gateway process is SIGKILLed at each step of a session and started again: every
session still ends once, with exactly one 31340 or 31341, and nothing is paid twice."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import trio

from arkrelay_core.nostr import bip340
from arkrelay_core.protocol import Kind
from arkrelay_core.protocol.tags import session_id_for
from arkrelay_core.servicekey import create_key_file

from .outcomes import transfer_params
from .processes import arkd_simulator, gateway_process, write_config
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
    config = write_config(
        directory,
        relay_url=relay.url,
        arkd_port=port,
        database=f"sqlite:///{directory / 'arkrelay.db'}",
        instance="gw-a",
    )
    gateway = gateway_process(config)
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
                session = session_id_for(intent.id)

                def mine(r, session=session) -> bool:
                    return r.content.get("session_id") == session

                await alice.publish(intent)
                if point == "after_intent":
                    await restart(gateway)
                first = await alice.next(Kind.CHALLENGE, match=mine, timeout=60)
                if point == "at_step_1":
                    await restart(gateway)
                await alice.answer(first)
                second = await alice.next(Kind.CHALLENGE, match=mine, timeout=60)
                if point == "at_step_2":
                    await restart(gateway)
                await alice.answer(second)
                if point == "after_last_answer":
                    await restart(gateway)
                outcome = await alice.wait_outcome(None, intent.id, timeout=60)
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
