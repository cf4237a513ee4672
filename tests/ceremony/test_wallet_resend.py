"""A wallet that comes back after the gateway restarts sends more than the endpoint's
per-pubkey rate allows at once. The endpoint answers the excess ``rate-limited:``; the
reference wallet reads that OK, sends the event again later, and every ceremony ends
confirmed. The gateway runs as a process with its own relay endpoint and is SIGKILLed;
the arkd simulator runs apart, so the wallet's VTXOs outlive the gateway."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import trio

from arkrelay_core.nostr import bip340
from arkrelay_core.protocol import Kind
from arkrelay_core.servicekey import create_key_file
from plugins.nostr.tests.relay_process import free_port

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
