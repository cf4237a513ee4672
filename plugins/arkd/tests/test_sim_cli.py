"""`arkrelay sim arkd`: a simulator process a real client can use, stopped by Ctrl-C."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import trio

from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.settings import ArkdSettings
from arkrelay_core.config import Duration, HostPort
from tests.support import running

from .conftest import Key

ARKRELAY = Path(sys.executable).parent / "arkrelay"


async def test_sim_arkd_serves_a_boarded_key_until_interrupted(nursery: trio.Nursery) -> None:
    alice = Key()
    async with running(
        [str(ARKRELAY), "sim", "arkd", "--port", "0", "--board", f"{alice.pub}:25000"]
    ) as command:
        with trio.fail_after(60):
            await command.wait_for(b"simulator ready on")
        text = command.text
        port = int(re.search(r"ready on 127\.0\.0\.1:(\d+)", text)[1])
        assert f"boarded 25000 sats for {alice.pub}" in text

        backend = ArkdBackend(
            ArkdSettings(target=HostPort("127.0.0.1", port), call_timeout=Duration(5))
        )
        with trio.fail_after(30):
            await nursery.start(backend.serve)
            [vtxo] = await backend.list_vtxos(alice.pub)
        assert (vtxo.owner, vtxo.amount, vtxo.status) == (alice.pub, 25000, "spendable")
    assert command.process.returncode == 0, command.text
    assert "stopped" in command.text
