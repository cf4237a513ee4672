"""`arkrelay sim tapd serve` and `arkrelay sim ln invoice <sat> --asset TICKER`: the
outside world bills in an asset, and the gateway's lnd pays the invoice."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import trio
from arkrelay_lnd.client import LndBackend
from arkrelay_lnd.settings import LndSettings
from arkrelay_lnd.sim import read_state

from arkrelay_core.config import Duration, HostPort, Secret
from tests.support import running

ARKRELAY = str(Path(sys.executable).parent / "arkrelay")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


async def test_an_asset_invoice_from_the_command_line_is_payable(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    data = str(tmp_path)
    async with running(
        [ARKRELAY, "sim", "tapd", "serve", "--data-dir", data, "--mint", "outside:USDX:5000"]
    ) as command:
        with trio.fail_after(60):
            await command.wait_for(b"tapd simulator ready")
            assert b"minted 5000 USDX on outside" in command.output
            done = await trio.run_process(
                [ARKRELAY, "sim", "ln", "invoice", "120", "--asset", "USDX", "--data-dir", data],
                capture_stdout=True,
                env=ENV,
            )
            invoice = json.loads(done.stdout)
            assert invoice["amount_msat"] == 120_000 and invoice["state"] == "open"
            entry = read_state(tmp_path).nodes["gateway"]
            gateway = LndBackend(
                LndSettings(
                    target=HostPort.parse(entry.target),
                    tls_cert=tmp_path / "sim-ln.cert",
                    macaroon=Secret(entry.macaroon),
                    call_timeout=Duration(5),
                )
            )
            await nursery.start(gateway.serve)
            paid = await gateway.pay_invoice(invoice["bolt11"], fee_limit_sat=10, timeout_seconds=5)
            assert paid.status.value == "succeeded"
    assert command.process.returncode == 0, command.text
    assert not (tmp_path / "sim-tapd.json").exists() and not (tmp_path / "sim-ln.json").exists()
