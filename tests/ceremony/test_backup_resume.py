"""Disaster recovery as docs/operators/backup.md tells it, on SQLite and on PostgreSQL:
`arkrelay run` stopped in the middle of a two-signature transfer, `arkrelay db backup`,
the database lost (and the endpoint relay's event store with it), `arkrelay db restore`,
`arkrelay run` again: the open session is still there and the transfer completes."""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import sqlalchemy as sa
import trio
from arkrelay_wallet import Wallet
from sqlalchemy.engine import make_url

from arkrelay_core.config.embedded import embedded_config_text
from arkrelay_core.protocol import Kind, session_id_for
from arkrelay_core.store import create_engine_for
from plugins.nostr.tests.relay_process import free_port

from .outcomes import action_id, transfer_params
from .processes import ARKRELAY, Process

HEX_KEY = re.compile(r"^\s+([0-9a-f]{64})\b", re.MULTILINE)
PASSPHRASE = "backup-test-passphrase"


def write_config(directory: Path, port: int, database: str) -> Path:
    """The embedded composition (endpoint relay, arkd/lnd/tapd simulators in-process) on
    free ports, keeping its state in ``directory/data`` and its database at ``database``."""
    text, missing = embedded_config_text(
        lambda role, name: True,
        listen=f"127.0.0.1:{port}",
        data_dir=str(directory / "data"),
        http_listen=f"127.0.0.1:{free_port()}",
    )
    assert not missing
    text = text.replace("[gateway]\n", f"[gateway]\ndatabase = {json.dumps(database)}\n", 1)
    config = directory / "gw.toml"
    config.write_text(text + '[outbox]\nretry_initial = "1s"\nretry_max = "2s"\n')
    return config


async def arkrelay(*args: str) -> str:
    done = await trio.run_process(
        [str(ARKRELAY), "--log-level", "warning", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout.decode(), done.stderr.decode())
    return done.stdout.decode()


def lose_the_database(database: str, data_dir: Path) -> None:
    """What a dead disk (or a dropped database) takes: the gateway's database with its WAL,
    the endpoint relay's stored events, and the key file (a copy is kept apart)."""
    url = make_url(database)
    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
    else:
        engine = create_engine_for(database)
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE"))
                connection.execute(sa.text("CREATE SCHEMA public"))
        finally:
            engine.dispose()
    for path in data_dir.glob("endpoint-events.sqlite3*"):
        path.unlink()
    (data_dir / "gateway.key").unlink()


async def test_an_open_session_resumes_after_backup_wipe_and_restore(
    tmp_path: Path, db_url: str
) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    config = write_config(tmp_path, port, db_url)
    gateway = Process(
        [str(ARKRELAY), "run", "--config", str(config)],
        tmp_path / "gateway.log",
        env={"ARKRELAY_KEY_PASSPHRASE": PASSPHRASE},
    )
    await trio.to_thread.run_sync(gateway.start, "gateway running")
    try:
        [gw] = HEX_KEY.findall(gateway.log.read_text())[:1]
        url = f"ws://127.0.0.1:{port}"
        signed: list[str] = []
        challenges: list[str] = []

        def count(wallet: Wallet, direction: str, received) -> None:
            if direction == "->" and received.event.kind == Kind.SIGNING_RESPONSE:
                signed.append(received.content["signature"])
            if direction == "<-" and received.event.kind == Kind.CHALLENGE:
                challenges.append(received.event.id)

        async with (
            Wallet(url, gw, reconnect=True, trace=count) as alice,
            Wallet(url, gw, reconnect=True) as bob,
        ):
            reply = await alice.call("lift_lightning", asset_id="gBTC", amount=20_000)
            paid = await arkrelay("sim", "ln", "pay", "--data-dir", str(data_dir), reply["invoice"])
            assert json.loads(paid)["status"] == "succeeded"
            lift_d = ["d", f"lift:{reply['payment_hash']}"]
            await alice.next(Kind.CONFIRMATION, match=lambda r: lift_d in r.event.tags, timeout=60)

            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey, 5_000))
            await alice.publish(intent)
            session = session_id_for(intent.id)
            first = await alice.next(
                Kind.CHALLENGE, match=lambda r: r.content["session_id"] == session
            )
            assert first.content["step_total"] == 2
            await alice.answer(first)
            # The second challenge is the gateway's word that it stored the first signature:
            # the session is open at step 2 when the gateway stops.
            second = await alice.next(
                Kind.CHALLENGE,
                match=lambda r: (
                    r.content["session_id"] == session
                    and r.content["step_index"] != first.content["step_index"]
                ),
                timeout=60,
            )
            await trio.to_thread.run_sync(gateway.kill, signal.SIGTERM)
            assert gateway.tail(1) == "stopped"

            backup = tmp_path / "backups" / "arkrelay.backup"
            backup.parent.mkdir()
            shutil.copy2(data_dir / "gateway.key", backup.parent / "gateway.key")
            made = await arkrelay("db", "backup", str(backup), "--config", str(config))
            assert made.startswith("backed up ")

            lose_the_database(db_url, data_dir)
            shutil.copy2(backup.parent / "gateway.key", data_dir / "gateway.key")
            restored = await arkrelay("db", "restore", str(backup), "--config", str(config))
            assert "; up to date" in restored

            await trio.to_thread.run_sync(gateway.start, "gateway running")
            assert HEX_KEY.findall(gateway.tail())[:1] == [gw]
            # Step 2, as asked before the stop, answered to the restored gateway.
            await alice.answer(second)
            outcome = await alice.wait_outcome(action_id(intent), intent.id, timeout=90)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            assert len(signed) == 2
            # The restored session carried on: nothing was asked again under a new event
            # (the challenge it republished at start is the stored one, already seen).
            assert challenges == [first.event.id, second.event.id]
            state = await bob.call("sync_state")
            assert [v["amount"] for v in state["vtxos"]] == [5_000]
            status = await alice.call("get_status", action_id=action_id(intent))
            assert status["state"] == "completed"
    finally:
        await trio.to_thread.run_sync(gateway.kill)
    assert gateway.starts == 2
