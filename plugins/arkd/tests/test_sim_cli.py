"""`arkrelay sim arkd`: a simulator process a real client can use, stopped by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import trio

from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.settings import ArkdSettings
from arkrelay_core.config import Duration, HostPort

from .conftest import Key

ARKRELAY = Path(sys.executable).parent / "arkrelay"


async def test_sim_arkd_serves_a_boarded_key_until_interrupted(nursery: trio.Nursery) -> None:
    alice = Key()
    process = await trio.lowlevel.open_process(
        [str(ARKRELAY), "sim", "arkd", "--port", "0", "--board", f"{alice.pub}:25000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output = b""
    try:
        with trio.fail_after(60):
            while b"simulator ready on" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, output.decode()
                output += chunk
        text = output.decode()
        port = int(re.search(r"ready on 127\.0\.0\.1:(\d+)", text)[1])
        assert f"boarded 25000 sats for {alice.pub}" in text

        backend = ArkdBackend(
            ArkdSettings(target=HostPort("127.0.0.1", port), call_timeout=Duration(5))
        )
        with trio.fail_after(30):
            await nursery.start(backend.serve)
            [vtxo] = await backend.list_vtxos(alice.pub)
        assert (vtxo.owner, vtxo.amount, vtxo.status) == (alice.pub, 25000, "spendable")
    finally:
        process.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            async for chunk in process.stdout:
                output += chunk
            await process.wait()
    assert process.returncode == 0, output.decode()
    assert "stopped" in output.decode()
