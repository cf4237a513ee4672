"""`arkrelay sim arkd`: a simulator process a real client can use, stopped by Ctrl-C."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
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
        [
            *(str(ARKRELAY), "sim", "arkd", "--port", "0", "--rest-port", "0"),
            *("--board", f"{alice.pub}:25000"),
        ]
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

        # The same VTXO through arkd's REST interface, on the port the command printed.
        rest_url = re.search(r"REST on (http://127\.0\.0\.1:\d+)", text)[1]
        async with httpx.AsyncClient(base_url=rest_url, timeout=10) as client:
            found = await client.get("/v1/indexer/vtxos", params={"scripts": vtxo.script})
        [listed] = found.json()["vtxos"]
        assert listed["outpoint"]["txid"] == vtxo.vtxo_id.split(":")[0]
        assert listed["amount"] == "25000"
    assert command.process.returncode == 0, command.text
    assert "stopped" in command.text
