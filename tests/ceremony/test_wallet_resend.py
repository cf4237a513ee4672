"""A wallet that comes back after the gateway restarts sends more than the endpoint's
per-pubkey rate allows at once. The endpoint answers the excess ``rate-limited:``; the
reference wallet reads that OK, sends the event again later, and every ceremony ends
confirmed. The gateway runs as a process with its own relay endpoint and is SIGKILLed;
the arkd simulator runs apart, so the wallet's VTXOs outlive the gateway."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
from arkrelay_wallet import PublishRefused

from arkrelay_core.nostr import bip340, sign_event
from arkrelay_core.protocol import Kind, session_id_for
from arkrelay_core.servicekey import create_key_file
from plugins.nostr.tests.relay_process import free_port
from tests.support import need_node

from .harness import gateway_config
from .outcomes import transfer_params
from .processes import Process, arkd_simulator, gateway_process
from .test_faults import PASSPHRASE, boarded, outcome_counts
from .wallet import Received, ScriptedWallet

#: Events a second (and burst) the endpoint takes from one pubkey: far below what a
#: wallet resuming six ceremonies sends at once.
PUBKEY_RATE = 2.0
CEREMONIES = 6
_UNUSED_RELAY = "ws://127.0.0.1:9"
#: The driver's own deadline for everything it does, in seconds.
DRIVER_TIMEOUT = 150
WALLET_JS = Path(__file__).resolve().parents[2] / "examples" / "wallet_js"


@dataclass
class EndpointGateway:
    process: Process
    url: str
    pubkey: str
    database: Path
    #: Alice's boarded VTXOs, one per ceremony.
    vtxos: list[str]


def endpoint_config(directory: Path, *, port: int, arkd_port: int) -> Path:
    """The fault tests' config with the gateway's own endpoint instead of a relay pool,
    holding each pubkey to ``PUBKEY_RATE``."""
    text = gateway_config(
        directory,
        _UNUSED_RELAY,
        key_file=directory.parent / "gateway.key",
        ark_target=f"127.0.0.1:{arkd_port}",
        lightning=False,
        extra="[ceremony]\nrequests_per_minute = 1000\nmax_open_sessions = 64\n",
    )
    pool = f'[transport.relays]\nplugin = "relays"\nrelays = ["{_UNUSED_RELAY}"]\n'
    assert pool in text
    endpoint = (
        f'[transport.endpoint]\nlisten = "127.0.0.1:{port}"\n'
        f"events_per_second_per_pubkey = {PUBKEY_RATE}\n"
    )
    path = directory / "gw.toml"
    path.write_text(text.replace(pool, endpoint))
    return path


@contextlib.asynccontextmanager
async def endpoint_gateway(tmp_path: Path, owner: str) -> AsyncIterator[EndpointGateway]:
    key = create_key_file(tmp_path / "gateway.key", PASSPHRASE)
    sim, arkd_port = arkd_simulator(tmp_path, [(owner, 5_000)] * CEREMONIES)
    port = free_port()
    directory = tmp_path / "gw"
    gateway = gateway_process(endpoint_config(directory, port=port, arkd_port=arkd_port))
    try:
        await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        yield EndpointGateway(
            gateway,
            f"ws://127.0.0.1:{port}",
            key.pubkey,
            directory / "arkrelay.db",
            boarded(sim.log, owner),
        )
    finally:
        gateway.kill()
        sim.kill()


async def test_python_wallet_resends_a_burst_after_a_reconnect_until_each_is_taken(
    tmp_path: Path,
) -> None:
    alice_secret = bip340.generate_secret_key()
    alice_pub = bip340.xonly_public_key(alice_secret).hex()
    bob_pub = bip340.xonly_public_key(bip340.generate_secret_key()).hex()
    async with (
        endpoint_gateway(tmp_path, alice_pub) as gw,
        ScriptedWallet(gw.url, gw.pubkey, secret=alice_secret, reconnect=True) as alice,
    ):
        assert len(gw.vtxos) == CEREMONIES
        intents = [
            alice.intent("ark:transfer", transfer_params(bob_pub, vtxo_ids=[vtxo]))
            for vtxo in gw.vtxos
        ]
        half = CEREMONIES // 2
        # The first half reaches the endpoint before the crash; whether the gateway stored
        # them is a race, so after the reconnect the wallet must send them again.
        for intent in intents[:half]:
            await alice.publish(intent)
        await trio.to_thread.run_sync(gw.process.kill, signal.SIGKILL)
        outcomes: dict[str, Received] = {}

        async def see_through(intent, publish: bool) -> None:
            outcomes[intent.id] = await alice.run_ceremony(intent, publish=publish, timeout=120)

        async with trio.open_nursery() as nursery:
            for intent in intents[:half]:
                nursery.start_soon(see_through, intent, False)
            # The second half waits for the connection: all go out once it is back.
            for intent in intents[half:]:
                nursery.start_soon(see_through, intent, True)
            await trio.sleep(1)  # the wallet sees its connection drop
            await trio.to_thread.run_sync(gw.process.start, "gateway running")

        assert alice.reconnects >= 1
        kinds = [outcomes[i.id].event.kind for i in intents]
        assert kinds == [Kind.CONFIRMATION] * CEREMONIES, [outcomes[i.id].content for i in intents]
        # The endpoint did refuse part of the burst: the wallet read it and sent again.
        assert alice.retried["rate-limited"] > 0, alice.retried
    counts = outcome_counts(gw.database)
    assert [counts.get(i.id) for i in intents] == [[Kind.CONFIRMATION]] * CEREMONIES


# ---------------------------------------------------------------------------- JavaScript


class Driver:
    """examples/wallet_js/test/resend_driver.mjs under node: the library, not the CLI, so
    the test can say when each half of the intents starts."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self._buffer = b""

    async def until(self, done: Any) -> None:
        """Read lines until ``done(lines)`` holds; an intent that failed ends the wait."""
        assert self.process.stdout is not None
        with trio.move_on_after(DRIVER_TIMEOUT + 30):
            while not done(self.lines):
                failed = [line for line in self.of("done") if "error" in line]
                assert not failed, f"an intent failed: {failed}\n{self.lines}"
                chunk = await self.process.stdout.receive_some()
                assert chunk, f"the driver ended early: {self.lines}"
                self._buffer += chunk
                *complete, self._buffer = self._buffer.split(b"\n")
                self.lines += [json.loads(line) for line in complete if line]
            return
        raise AssertionError(f"the driver did not get there in time: {self.lines}")

    def of(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == name]

    async def start(self, first: int, last: int) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(f"start {first} {last}\n".encode())


@pytest.mark.node
async def test_js_wallet_resends_a_burst_after_a_reconnect_until_each_is_taken(
    tmp_path: Path,
) -> None:
    need_node(WALLET_JS, ["nostr-tools", "ws"])
    alice_secret = bip340.generate_secret_key()
    alice_pub = bip340.xonly_public_key(alice_secret).hex()
    bob_pub = bip340.xonly_public_key(bip340.generate_secret_key()).hex()
    async with endpoint_gateway(tmp_path, alice_pub) as gw:
        config = {
            "relay": gw.url,
            "gateway": gw.pubkey,
            "secret": alice_secret.hex(),
            "intents": [
                {"type": "ark:transfer", "params": transfer_params(bob_pub, vtxo_ids=[vtxo])}
                for vtxo in gw.vtxos
            ],
            "timeout_s": DRIVER_TIMEOUT,
        }
        process = await trio.lowlevel.open_process(
            ["node", "test/resend_driver.mjs"],
            cwd=WALLET_JS,
            env={**os.environ, "ARKRELAY_DRIVER": json.dumps(config)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        driver = Driver(process)
        try:
            await driver.until(lambda lines: driver.of("ready"))
            half = CEREMONIES // 2
            # The first half is published (the relay said OK) before the crash.
            await driver.start(0, half)
            await driver.until(lambda lines: len(driver.of("intent")) == half)
            await trio.to_thread.run_sync(gw.process.kill, signal.SIGKILL)
            await driver.until(lambda lines: driver.of("disconnected"))
            await driver.start(half, CEREMONIES)
            await trio.to_thread.run_sync(gw.process.start, "gateway running")
            await driver.until(lambda lines: driver.of("finished"))
            assert await process.wait() == 0, driver.lines
        finally:
            if process.returncode is None:
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
        done = sorted(driver.of("done"), key=lambda line: line["index"])
        assert [line.get("kind") for line in done] == [Kind.CONFIRMATION] * CEREMONIES, done
        [finished] = driver.of("finished")
        assert finished["reconnects"] >= 1
        # The endpoint did refuse part of the burst: the wallet read it and sent again.
        assert finished["retried"].get("rate-limited", 0) > 0, finished
        assert any(r["reason"].startswith("rate-limited:") for r in driver.of("retry"))
        intent_ids = [line["id"] for line in driver.of("intent")]
    counts = outcome_counts(gw.database)
    assert [counts.get(i) for i in intent_ids] == [[Kind.CONFIRMATION]] * CEREMONIES


async def test_a_resend_refused_for_good_fails_the_ceremony_with_the_relays_reason(
    tmp_path: Path,
) -> None:
    alice_secret = bip340.generate_secret_key()
    alice_pub = bip340.xonly_public_key(alice_secret).hex()
    bob_pub = bip340.xonly_public_key(bip340.generate_secret_key()).hex()
    async with (
        endpoint_gateway(tmp_path, alice_pub) as gw,
        ScriptedWallet(gw.url, gw.pubkey, secret=alice_secret, reconnect=True) as alice,
    ):
        built = alice.intent("ark:transfer", transfer_params(bob_pub, vtxo_ids=gw.vtxos[:1]))
        # The same intent with a NIP-40 expiration a few seconds out: the endpoint takes it
        # now and refuses it (invalid:) once the restarted gateway has it sent again.
        intent = sign_event(
            alice_secret,
            kind=Kind.INTENT,
            content=built.content,
            tags=[*built.tags, ["expiration", str(int(time.time()) + 2)]],
        )
        alice.careful.expect(session_id_for(intent.id), json.loads(intent.content))
        await alice.publish(intent)
        await trio.to_thread.run_sync(gw.process.kill, signal.SIGKILL)
        await trio.sleep(3)  # past the expiration
        await trio.to_thread.run_sync(gw.process.start, "gateway running")
        with pytest.raises(PublishRefused) as refused:
            await alice.run_ceremony(intent, publish=False, timeout=60)
        assert refused.value.event_id == intent.id
        assert refused.value.reason.startswith("invalid:") and "expired" in refused.value.reason
        assert alice.reconnects >= 1
