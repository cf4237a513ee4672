"""The gateway's own sends are recorded before SubmitTx, so a restart can tell a send that
finished from one never made, and never pays twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from arkrelay_core.ceremony.payouts import send_from_gateway, send_status
from arkrelay_core.ceremony.spend import Output

from .harness import board, running_gateway


class Crash(Exception):
    """Stands for the process dying right after the plan was recorded."""


async def test_send_status_tells_done_from_never_sent(tmp_path: Path, relay) -> None:
    async with running_gateway(tmp_path / "gw", relay.url) as gateway:
        engine = gateway.engine
        gbtc = engine.assets.gbtc.asset_id
        await board(gateway, gateway.identity.pubkey, 50_000)
        payee = "ab" * 32
        plans = []

        async def keep(plan) -> None:
            plans.append(plan)

        async def crash(plan) -> None:
            plans.append(plan)
            raise Crash

        with pytest.raises(Crash):
            await send_from_gateway(engine, [Output(payee, gbtc, 1_000)], crash)
        assert await send_status(engine, plans[-1]) == "not_sent"
        txid, _ = await send_from_gateway(engine, [Output(payee, gbtc, 1_000)], keep)
        assert plans[-1]["ark_txid"] == txid
        assert await send_status(engine, plans[-1]) == "done"
        assert await send_status(engine, None) == "not_sent"
        paid = await engine.ark.list_vtxos(payee)
        assert [v.amount for v in paid] == [1_000]
