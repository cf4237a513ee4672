"""The real `arkrelay run` with the endpoint enabled: a wallet connects, the gateway hears it."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import msgspec
import trio
from trio_websocket import open_websocket_url

from arkrelay_core.nostr import generate_secret_key, sign_event
from tests.support import running

ARKRELAY = Path(sys.executable).parent / "arkrelay"


async def test_a_wallet_reaches_the_gateway_through_its_endpoint(tmp_path: Path) -> None:
    (tmp_path / "gw.toml").write_text(
        '[gateway]\ndata_dir = "state"\n\n[transport.endpoint]\nlisten = "127.0.0.1:0"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKRELAY_")}
    async with running(
        [str(ARKRELAY), "run", "--config", "gw.toml"],
        cwd=tmp_path,
        env=env,
        stop_signal=signal.SIGTERM,
    ) as command:
        with trio.fail_after(60):
            await command.wait_for(b"gateway running")
        banner = command.text
        url = re.search(r"endpoint\s+(ws://127\.0\.0\.1:\d+)", banner)[1]
        service = re.search(r"^\s+([0-9a-f]{64})", banner, re.MULTILINE)[1]

        wallet = generate_secret_key()
        intent = sign_event(
            wallet,
            kind=31510,
            content=json.dumps({"action_id": "a1", "type": "ark:transfer", "params": {},
                                "expires_at": 2_000_000_000}),
            tags=[["p", service], ["d", "a1"]],
        )  # fmt: skip
        with trio.fail_after(30):
            async with open_websocket_url(url) as ws:
                await ws.send_message(json.dumps(["EVENT", msgspec.to_builtins(intent)]))
                assert json.loads(await ws.get_message()) == ["OK", intent.id, True, ""]
                await ws.send_message(json.dumps(["REQ", "mine", {"authors": [intent.pubkey]}]))
                assert json.loads(await ws.get_message())[2]["id"] == intent.id
                assert json.loads(await ws.get_message()) == ["EOSE", "mine"]
    assert command.process.returncode == 0, command.text

    # The core stored the intent's id (its dedup record) before anything else.
    with sqlite3.connect(tmp_path / "state" / "arkrelay.db") as db:
        assert db.execute("select id, kind from events_in").fetchall() == [(intent.id, 31510)]


async def test_what_the_endpoint_acknowledged_is_recorded_when_the_gateway_is_killed(
    tmp_path: Path,
) -> None:
    (tmp_path / "gw.toml").write_text(
        '[gateway]\ndata_dir = "state"\n\n[transport.endpoint]\nlisten = "127.0.0.1:0"\n'
        "events_per_second_per_pubkey = 1000\nevents_per_second_per_connection = 1000\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKRELAY_")}
    async with running(
        [str(ARKRELAY), "run", "--config", "gw.toml"],
        cwd=tmp_path,
        env=env,
        stop_signal=signal.SIGKILL,  # straight after the last OK, below
    ) as command:
        with trio.fail_after(60):
            await command.wait_for(b"gateway running")
        url = re.search(r"endpoint\s+(ws://127\.0\.0\.1:\d+)", command.text)[1]
        service = re.search(r"^\s+([0-9a-f]{64})", command.text, re.MULTILINE)[1]
        requests = [
            sign_event(
                generate_secret_key(),  # one wallet each: a 31500 replaces its author's last
                kind=31500,
                content=json.dumps({"action": "get_info", "request_id": f"r{i}"}),
                tags=[["p", service]],
            )
            for i in range(20)
        ]
        with trio.fail_after(30):
            async with open_websocket_url(url) as ws:
                for request in requests:  # back to back: the core records them in batches
                    await ws.send_message(json.dumps(["EVENT", msgspec.to_builtins(request)]))
                oks = [json.loads(await ws.get_message()) for _ in requests]
    assert command.process.returncode == -signal.SIGKILL
    assert sorted(oks) == sorted(["OK", r.id, True, ""] for r in requests)

    # Every event acknowledged is in the core's store, body and all, for a restart to handle.
    with sqlite3.connect(tmp_path / "state" / "arkrelay.db") as db:
        rows = db.execute("select id, event is not null from events_in").fetchall()
    assert sorted(rows) == sorted((r.id, 1) for r in requests)


async def test_an_event_the_core_cannot_record_is_refused_then_taken(tmp_path: Path) -> None:
    (tmp_path / "gw.toml").write_text(
        '[gateway]\ndata_dir = "state"\n\n[transport.endpoint]\nlisten = "127.0.0.1:0"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKRELAY_")}
    async with running(
        [str(ARKRELAY), "run", "--config", "gw.toml"],
        cwd=tmp_path,
        env=env,
        stop_signal=signal.SIGKILL,
    ) as command:
        with trio.fail_after(60):
            await command.wait_for(b"gateway running")
        url = re.search(r"endpoint\s+(ws://127\.0\.0\.1:\d+)", command.text)[1]
        service = re.search(r"^\s+([0-9a-f]{64})", command.text, re.MULTILINE)[1]
        # The database breaks under the running gateway: its inbound table is gone.
        with sqlite3.connect(tmp_path / "state" / "arkrelay.db") as db:
            db.execute("alter table events_in rename to events_in_gone")
        request = sign_event(
            generate_secret_key(),
            kind=31500,
            content=json.dumps({"action": "get_info", "request_id": "r1"}),
            tags=[["p", service]],
        )
        with trio.fail_after(30):
            async with open_websocket_url(url) as ws:
                await ws.send_message(json.dumps(["EVENT", msgspec.to_builtins(request)]))
                refused = json.loads(await ws.get_message())
                # A database error never takes the gateway down: once the table is back,
                # the wallet's resend of the same event is taken.
                with sqlite3.connect(tmp_path / "state" / "arkrelay.db") as db:
                    db.execute("alter table events_in_gone rename to events_in")
                await ws.send_message(json.dumps(["EVENT", msgspec.to_builtins(request)]))
                taken = json.loads(await ws.get_message())
        assert command.process.returncode is None
    # Never "OK true" for what was not recorded: the wallet keeps the event and sends it again.
    assert refused[:3] == ["OK", request.id, False] and refused[3].startswith("error:")
    assert taken[:3] == ["OK", request.id, True]
    assert "no such table: events_in" in command.text
