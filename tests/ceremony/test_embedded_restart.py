"""`arkrelay run` on the embedded composition (its own relay endpoint, the arkd, lnd and
tapd simulators in-process), killed with SIGKILL in the middle of a ceremony and started
again: the open session finishes, because the gateway's database and the simulated
arkd's ledger are both on disk and the wallet reconnects and sends again."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import trio
from arkrelay_wallet import Wallet

from arkrelay_core.config.embedded import embedded_config_text
from arkrelay_core.protocol import Kind, session_id_for
from plugins.nostr.tests.relay_process import free_port

from .outcomes import action_id, transfer_params
from .processes import ARKRELAY, Process

HEX_KEY = re.compile(r"^\s+([0-9a-f]{64})\b", re.MULTILINE)


def embedded_process(directory: Path, port: int) -> Process:
    """`arkrelay run` on the embedded defaults, moved to a free port and ``directory``."""
    text, missing = embedded_config_text(
        lambda role, name: True, listen=f"127.0.0.1:{port}", data_dir=str(directory / "data")
    )
    assert not missing
    config = directory / "gw.toml"
    config.write_text(text + '[outbox]\nretry_initial = "1s"\nretry_max = "2s"\n')
    return Process(
        [str(ARKRELAY), "run", "--config", str(config)],
        directory / "gateway.log",
        env={"ARKRELAY_KEY_PASSPHRASE": "restart-test-passphrase"},
    )


async def test_sigkill_mid_ceremony_then_restart_finishes_the_session(tmp_path: Path) -> None:
    port = free_port()
    gateway = embedded_process(tmp_path, port)
    gateway.start("gateway running")
    try:
        [gw] = HEX_KEY.findall(gateway.log.read_text())[:1]
        url = f"ws://127.0.0.1:{port}"
        signed: list[str] = []

        def count_signatures(wallet: Wallet, direction: str, received) -> None:
            if direction == "->" and received.event.kind == Kind.SIGNING_RESPONSE:
                signed.append(received.content["signature"])

        async with (
            Wallet(url, gw, reconnect=True, trace=count_signatures) as alice,
            Wallet(url, gw, reconnect=True) as bob,
        ):
            # Funded the embedded way: a Lightning lift, paid by the outside node of the
            # running gateway's simulated network through `arkrelay sim ln pay`.
            reply = await alice.call("lift_lightning", asset_id="gBTC", amount=20_000)
            pay = [str(ARKRELAY), "sim", "ln", "pay", "--data-dir", str(tmp_path / "data")]
            paid = await trio.run_process(
                [*pay, reply["invoice"]],
                capture_stdout=True,
                capture_stderr=True,
            )
            assert json.loads(paid.stdout)["status"] == "succeeded", paid.stderr
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
            gateway.kill(signal.SIGKILL)
            assert len(signed) == 1
            await trio.sleep(1)  # the wallets see their connections drop
            gateway.start("gateway running")

            outcome = await alice.run_ceremony(intent, publish=False, timeout=90)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            # The second signature was asked for, and given, by the restarted gateway.
            assert len(signed) == 2
            assert alice.reconnects >= 1 and bob.reconnects >= 1
            state = await bob.call("sync_state")
            assert [v["amount"] for v in state["vtxos"]] == [5_000]
            status = await alice.call("get_status", action_id=action_id(intent))
            assert status["state"] == "completed"
    finally:
        gateway.kill()
    assert gateway.starts == 2
