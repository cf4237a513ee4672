"""`arkrelay sim ln`: a network process a real client can use, driven from the command line
through its outside node, stopped by Ctrl-C."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import bolt11
import trio

from arkrelay_core.config import Duration, HostPort, Secret
from arkrelay_lnd.client import LndBackend
from arkrelay_lnd.settings import LndSettings
from arkrelay_lnd.sim import STATE_FILE, read_state
from arkrelay_lnd.sim.state import client_settings
from tests.support import running

ARKRELAY = str(Path(sys.executable).parent / "arkrelay")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


async def _cli(*args: str) -> dict[str, object]:
    done = await trio.run_process([ARKRELAY, "sim", "ln", *args], capture_stdout=True, env=ENV)
    return json.loads(done.stdout)


async def test_sim_ln_drives_the_outside_node_against_a_gateway(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    data = str(tmp_path)
    async with running([ARKRELAY, "sim", "ln", "serve", "--data-dir", data]) as command:
        with trio.fail_after(60):
            await command.wait_for(b"lnd simulator ready")
        state = read_state(tmp_path)
        gateway_entry = state.nodes["gateway"]
        gateway = LndBackend(
            LndSettings(
                target=HostPort.parse(gateway_entry.target),
                tls_cert=tmp_path / "sim-ln.cert",
                macaroon=Secret(gateway_entry.macaroon),
                call_timeout=Duration(5),
            )
        )
        with trio.fail_after(60):
            await nursery.start(gateway.serve)
            # The outside world bills the gateway: a real BOLT11, signed by the outside node.
            created = await _cli("invoice", "1500", "--memo", "coffee", "--data-dir", data)
            decoded = bolt11.decode(str(created["bolt11"]))
            assert decoded.payee == state.nodes["outside"].pubkey
            assert (decoded.currency, int(decoded.amount_msat or 0)) == ("bcrt", 1_500_000)
            assert decoded.description == "coffee"
            paid = await gateway.pay_invoice(
                str(created["bolt11"]), fee_limit_sat=50, timeout_seconds=10
            )
            assert paid.status.value == "succeeded"
            status = await _cli("status", str(created["payment_hash"]), "--data-dir", data)
            assert status["invoice"]["state"] == "settled"  # type: ignore[index]
            assert status["payment"] is None

            # The outside world pays the gateway's invoice.
            invoice = await gateway.create_invoice(2_000_000, memo="lift", expiry=600)
            result = await _cli("pay", invoice.bolt11, "--data-dir", data)
            assert result["status"] == "succeeded"
            assert (await gateway.lookup_invoice(invoice.payment_hash)).state.value == "settled"
            status = await _cli("status", invoice.payment_hash, "--data-dir", data)
            assert status["payment"]["status"] == "succeeded"  # type: ignore[index]
    assert command.process.returncode == 0, command.text
    assert "stopped" in command.text
    assert not (tmp_path / STATE_FILE).exists()


async def test_sim_ln_without_a_running_network_says_so(tmp_path: Path) -> None:
    done = await trio.run_process(
        [ARKRELAY, "sim", "ln", "invoice", "10", "--data-dir", str(tmp_path)],
        capture_stderr=True,
        check=False,
        env=ENV,
    )
    assert done.returncode != 0
    assert b"arkrelay sim ln serve" in done.stderr


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll the serving process (it mines on its own clock) until ``condition``."""
    while True:
        if await condition():
            return
        await trio.sleep(0.1)


async def test_sim_ln_serve_fee_floor_holds_cheap_transactions_until_bumped(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    args = ["--data-dir", str(tmp_path), "--fee-floor", "5", "--block-interval", "0.2"]
    async with running([ARKRELAY, "sim", "ln", "serve", *args]) as command:
        with trio.fail_after(60):
            await command.wait_for(b"lnd simulator ready")
        gateway = LndBackend(client_settings(tmp_path, "gateway", call_timeout=Duration(5)))
        with trio.fail_after(60):
            await nursery.start(gateway.serve)
            tx = await gateway.send_op_return(b"floor" + bytes(27), sat_per_vbyte=2)
            sent_at = (await gateway.get_info()).block_height

            async def two_blocks_later() -> bool:
                return (await gateway.get_info()).block_height >= sent_at + 2

            async def confirmed() -> bool:
                return (await gateway.tx_confirmations(tx.txid)).confirmations > 0

            await _until(two_blocks_later)
            assert not await confirmed()
            await gateway.bump_fee(tx.txid, sat_per_vbyte=6)
            await _until(confirmed)
    assert command.process.returncode == 0, command.text
