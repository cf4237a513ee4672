"""The crash matrix: the gateway process is SIGKILLed right after each backend call took
effect, before it hears the answer, and started again; the wallet never resends.

Every session must end exactly once, with one outcome, its inputs never left locked at
the Ark server, nothing paid twice. CI runs one round per point; ``scripts/crash_matrix``
runs ``ARKRELAY_CRASH_ROUNDS`` rounds (5 or more) and prints the tally.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import msgspec
import pytest
import trio
from arkrelay_arkd._proto.ark.v1 import indexer_pb2, service_pb2
from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.settings import ArkdSettings
from arkrelay_lnd._proto import lightning_pb2
from arkrelay_lnd._proto.invoicesrpc import invoices_pb2
from arkrelay_lnd._proto.routerrpc import router_pb2
from arkrelay_lnd._proto.walletrpc import walletkit_pb2
from arkrelay_lnd.sim.state import CERT_FILE, read_state
from arkrelay_lnd.sim.tls import self_signed
from arkrelay_wallet.recovery import finalize_pending

from arkrelay_core.config import HostPort
from arkrelay_core.interfaces import InvoiceState
from arkrelay_core.nostr import bip340
from arkrelay_core.protocol import Kind, session_id_for
from arkrelay_core.servicekey import create_key_file

from .harness import node_client
from .killproxy import KillProxy, streaming_methods
from .outcomes import transfer_params
from .processes import arkd_simulator, gateway_process, lnd_simulator
from .test_faults import PASSPHRASE, boarded, outcome_counts, sqlite_config
from .test_instances import finalized_vtxos
from .wallet import ScriptedWallet

ROUNDS = int(os.environ.get("ARKRELAY_CRASH_ROUNDS", "1"))
#: Ark server calls after which the gateway dies, unheard.
ARK_POINTS = ("/ark.v1.ArkService/SubmitTx", "/ark.v1.ArkService/FinalizeTx")
BOARD = 5_000
AMOUNT = 1_000
FEE = 10


async def _restart_when_killed(gateway, proxy: KillProxy, kills: list[str]) -> None:
    """Start the gateway again each time the proxy killed it."""
    while True:
        await trio.sleep(0.05)
        if len(proxy.fired) > len(kills) and gateway.popen.poll() is not None:
            kills.append(proxy.fired[len(kills)])
            await trio.to_thread.run_sync(gateway.start, "gateway running")


@pytest.mark.parametrize("point", ARK_POINTS, ids=("SubmitTx", "FinalizeTx"))
async def test_killed_right_after_an_ark_call(tmp_path: Path, relay, point: str) -> None:
    alice_secret, bob_secret = bip340.generate_secret_key(), bip340.generate_secret_key()
    alice_pub = bip340.xonly_public_key(alice_secret).hex()
    bob_pub = bip340.xonly_public_key(bob_secret).hex()
    key = create_key_file(tmp_path / "gateway.key", PASSPHRASE)
    sim, sim_port = arkd_simulator(tmp_path, [(alice_pub, BOARD)] * ROUNDS)
    await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
    vtxos = boarded(sim.log, alice_pub)
    directory = tmp_path / "gw"
    directory.mkdir()
    proxy = KillProxy(f"127.0.0.1:{sim_port}", streaming_methods(service_pb2, indexer_pb2))
    proxy.start()
    gateway = gateway_process(sqlite_config(directory, relay.url, proxy.port))
    kills: list[str] = []
    outcomes = []
    try:
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        async with (
            ScriptedWallet(relay.url, key.pubkey, secret=alice_secret) as alice,
            ScriptedWallet(relay.url, key.pubkey, secret=bob_secret),
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_restart_when_killed, gateway, proxy, kills)
            for vtxo_id in vtxos:
                proxy.arm(point, gateway.kill)
                intent = alice.intent("ark:transfer", transfer_params(bob_pub, vtxo_ids=[vtxo_id]))
                outcome = await alice.run_ceremony(intent, timeout=120)
                outcomes.append((intent, outcome))
            nursery.cancel_scope.cancel()
    finally:
        gateway.kill()
        proxy.stop()
    assert kills == [point] * ROUNDS, (kills, gateway.tail())
    for _, outcome in outcomes:
        assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
    counts = outcome_counts(directory / "arkrelay.db")
    assert [counts.get(intent.id) for intent, _ in outcomes] == [[Kind.CONFIRMATION]] * ROUNDS
    try:
        # Nothing locked, nothing twice: bob got each payment once, alice kept the change
        # of each, and no VTXO of hers is stuck spent-but-not-finalized.
        bob_has = await finalized_vtxos(sim_port, bob_pub)
        alice_has = await finalized_vtxos(sim_port, alice_pub)
    finally:
        sim.kill()
    assert sorted(v.amount for v in bob_has) == [AMOUNT] * ROUNDS
    assert sorted(v.amount for v in alice_has) == [BOARD - AMOUNT - FEE] * ROUNDS
    assert sim.log.read_text().count("accepted ark tx") == ROUNDS


async def test_killed_right_after_the_land_payment_started(tmp_path: Path, relay) -> None:
    """lnd took the payment (it reports it under way) and the gateway died before hearing:
    started again, it follows that payment; the invoice is paid once, the land confirmed."""
    alice_secret = bip340.generate_secret_key()
    alice_pub = bip340.xonly_public_key(alice_secret).hex()
    key = create_key_file(tmp_path / "gateway.key", PASSPHRASE)
    ln_dir = tmp_path / "ln"
    ln = lnd_simulator(ln_dir)
    sim, sim_port = arkd_simulator(tmp_path, [(alice_pub, 10_000)] * ROUNDS)
    directory = tmp_path / "gw"
    directory.mkdir()
    gateway = proxy = None
    kills: list[str] = []
    point = "/routerrpc.Router/SendPaymentV2"
    try:
        await trio.to_thread.run_sync(ln.start, "lnd simulator ready")
        await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
        node = read_state(ln_dir).nodes["gateway"]
        mine = self_signed("crash matrix relay")
        proxy = KillProxy(
            node.target,
            streaming_methods(lightning_pb2, router_pb2, invoices_pb2, walletkit_pb2),
            upstream_cert=(ln_dir / CERT_FILE).read_bytes(),
            tls=(mine.key_pem, mine.cert_pem),
        )
        proxy.start()
        (directory / "relay.cert").write_bytes(mine.cert_pem)
        lightning = (
            f'[backend.lightning]\nplugin = "lnd"\ntarget = "{proxy.target}"\n'
            f'tls_cert = "{directory / "relay.cert"}"\nmacaroon = "{node.macaroon}"\n'
        )
        gateway = gateway_process(sqlite_config(directory, relay.url, sim_port, lightning))
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        async with (
            ScriptedWallet(relay.url, key.pubkey, secret=alice_secret) as alice,
            node_client(ln_dir) as shop,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_restart_when_killed, gateway, proxy, kills)
            for round_ in range(ROUNDS):
                invoice = await shop.create_invoice(3_000_000, memo=f"r{round_}", expiry=3600)
                params = {
                    "asset_id": "gBTC",
                    "amount": 3_000,
                    "lightning_invoice": invoice.bolt11,
                    "fee": {"asset_id": "gBTC", "amount": 3},
                }
                proxy.arm(point, gateway.kill)
                intent = alice.intent("lightning:land", params)
                outcome = await alice.run_ceremony(intent, timeout=120)
                assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
                paid = await shop.lookup_invoice(invoice.payment_hash)
                assert paid.state is InvoiceState.SETTLED
                assert paid.amount_paid_msat == 3_000_000  # once, not twice
            nursery.cancel_scope.cancel()
        assert kills == [point] * ROUNDS, gateway.tail()
        counts = outcome_counts(directory / "arkrelay.db")
        assert sorted(counts.values()) == [[Kind.CONFIRMATION]] * ROUNDS
    finally:
        for process in (gateway, sim, ln):
            if process is not None:
                process.kill()
        if proxy is not None:
            proxy.stop()


class _Recording(ScriptedWallet):
    """Keeps every challenge it was asked to sign, in order; answers the first proof
    challenge with a wrong signature when ``spoil_first_proof``."""

    seen: list[dict]
    spoil_first_proof = False
    #: Run once, before answering the first proof challenge.
    before_proof = None

    def inspect(self, challenge) -> None:
        super().inspect(challenge)
        self.__dict__.setdefault("seen", []).append(challenge.content)

    async def answer(self, challenge, **kwargs):
        role = challenge.content.get("context", {}).get("tx_role")
        if self.before_proof is not None and role == "intent_proof":
            hook, self.before_proof = self.before_proof, None
            await hook()
        if self.spoil_first_proof and role == "intent_proof":
            self.spoil_first_proof = False
            kwargs["signature"] = "11" * 64
        return await super().answer(challenge, **kwargs)


@pytest.mark.parametrize(
    "code", (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE), ids=str
)
async def test_submit_answer_lost_the_running_gateway_recovers(
    tmp_path: Path, relay, code: grpc.StatusCode
) -> None:
    """arkd accepted the ark tx but its answer never reached the gateway, which lives on:
    a timeout (not retried), or a dropped connection (the transport retries and arkd
    refuses the duplicate). Without a restart the gateway recovers the answer through
    the author's ownership proof and GetPendingTx, and the transfer completes once."""
    alice_secret, bob_secret = bip340.generate_secret_key(), bip340.generate_secret_key()
    alice_pub = bip340.xonly_public_key(alice_secret).hex()
    bob_pub = bip340.xonly_public_key(bob_secret).hex()
    key = create_key_file(tmp_path / "gateway.key", PASSPHRASE)
    sim, sim_port = arkd_simulator(tmp_path, [(alice_pub, BOARD)])
    await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
    (vtxo_id,) = boarded(sim.log, alice_pub)
    directory = tmp_path / "gw"
    directory.mkdir()
    proxy = KillProxy(f"127.0.0.1:{sim_port}", streaming_methods(service_pb2, indexer_pb2))
    proxy.start()
    gateway = gateway_process(sqlite_config(directory, relay.url, proxy.port))
    point = "/ark.v1.ArkService/SubmitTx"
    try:
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        pid = gateway.popen.pid
        async with _Recording(relay.url, key.pubkey, secret=alice_secret) as alice:
            # The author's bad proof signature: asked again, never a failure (§3).
            alice.spoil_first_proof = code == grpc.StatusCode.DEADLINE_EXCEEDED
            proxy.arm_lost(point, code=code)
            intent = alice.intent("ark:transfer", transfer_params(bob_pub, vtxo_ids=[vtxo_id]))
            outcome = await alice.run_ceremony(intent, timeout=120)
            seen = alice.seen
        assert proxy.fired == [point]
        assert gateway.popen.poll() is None and gateway.popen.pid == pid  # never restarted
    finally:
        gateway.kill()
        proxy.stop()
    assert outcome.event.kind == Kind.CONFIRMATION, (outcome.content, gateway.tail())
    assert alice.refused == []
    # The proof steps follow the two of the transfer (ark tx, checkpoint), numbered after
    # them so their `d` tags are new; the checkpoint step comes after the proof.
    roles = [(c["step_index"], c["context"]["tx_role"]) for c in seen]
    assert roles[0] == (1, "ark_tx") and roles[-1] == (2, "checkpoint"), roles
    proof = roles[1:-1]
    assert proof and all(r == "intent_proof" and i > 2 for i, r in proof), roles
    steps = [i for i, _ in proof]
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:  # the spoiled step came again
        assert steps[0] == steps[1] == 3 and sorted(set(steps)) == list(
            range(3, 3 + len(set(steps)))
        )
    else:
        assert steps == list(range(3, 3 + len(steps)))
    assert all(c["step_total"] == 2 + len(set(steps)) for c in seen[1:-1])
    assert all("moves no funds" in c["context"]["human"] for c in seen[1:-1])
    try:
        bob_has = await finalized_vtxos(sim_port, bob_pub)
        alice_has = await finalized_vtxos(sim_port, alice_pub)
    finally:
        sim.kill()
    assert [v.amount for v in bob_has] == [AMOUNT]
    assert [v.amount for v in alice_has] == [BOARD - AMOUNT - FEE]
    assert sim.log.read_text().count("accepted ark tx") == 1
    assert "GetPendingTx" in "".join(proxy.calls)


async def test_submit_answer_lost_and_the_wallet_finalized_meanwhile(tmp_path: Path, relay) -> None:
    """SubmitTx's answer lost; before signing the proof the wallet finalizes the pending
    tx on its own (GetPendingTx, FinalizeTx). The gateway's GetPendingTx then has nothing:
    it finds the outputs at arkd and confirms, submitting nothing again."""
    alice_secret, bob_secret = bip340.generate_secret_key(), bip340.generate_secret_key()
    alice_pub = bip340.xonly_public_key(alice_secret).hex()
    bob_pub = bip340.xonly_public_key(bob_secret).hex()
    key = create_key_file(tmp_path / "gateway.key", PASSPHRASE)
    sim, sim_port = arkd_simulator(tmp_path, [(alice_pub, BOARD)])
    await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
    (vtxo_id,) = boarded(sim.log, alice_pub)
    directory = tmp_path / "gw"
    directory.mkdir()
    proxy = KillProxy(f"127.0.0.1:{sim_port}", streaming_methods(service_pb2, indexer_pb2))
    proxy.start()
    gateway = gateway_process(sqlite_config(directory, relay.url, proxy.port))
    finalized = []

    async def finalize_alone() -> None:
        backend = ArkdBackend(ArkdSettings(target=HostPort("127.0.0.1", sim_port)))
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.serve)
            finalized.extend(await finalize_pending(backend, alice_secret))
            nursery.cancel_scope.cancel()

    try:
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        async with _Recording(relay.url, key.pubkey, secret=alice_secret) as alice:
            alice.before_proof = finalize_alone
            proxy.arm_lost("/ark.v1.ArkService/SubmitTx")
            intent = alice.intent("ark:transfer", transfer_params(bob_pub, vtxo_ids=[vtxo_id]))
            outcome = await alice.run_ceremony(intent, timeout=120)
            roles = [c["context"]["tx_role"] for c in alice.seen]
    finally:
        gateway.kill()
        proxy.stop()
    assert outcome.event.kind == Kind.CONFIRMATION, (outcome.content, gateway.tail())
    assert [f.ark_txid for f in finalized] == [outcome.content["ark_txid"]]
    assert roles[0] == "ark_tx" and "checkpoint" not in roles and "intent_proof" in roles
    try:
        bob_has = await finalized_vtxos(sim_port, bob_pub)
    finally:
        sim.kill()
    assert [v.amount for v in bob_has] == [AMOUNT]
    assert sim.log.read_text().count("accepted ark tx") == 1


async def test_batch_submit_answer_lost_the_leader_proves(tmp_path: Path, relay) -> None:
    """A two-leg swap batch whose SubmitTx answer is lost: only the leader's author (the
    first leg by session id, which submits) is asked for an ownership proof of its own
    inputs; GetPendingTx returns the whole batch transaction and both legs complete."""
    secrets = [bip340.generate_secret_key() for _ in range(2)]
    pubs = [bip340.xonly_public_key(s).hex() for s in secrets]
    key = create_key_file(tmp_path / "gateway.key", PASSPHRASE)
    sim, sim_port = arkd_simulator(tmp_path, [(p, BOARD) for p in pubs])
    await trio.to_thread.run_sync(sim.start, "arkd simulator ready")
    directory = tmp_path / "gw"
    directory.mkdir()
    proxy = KillProxy(f"127.0.0.1:{sim_port}", streaming_methods(service_pb2, indexer_pb2))
    proxy.start()
    gateway = gateway_process(sqlite_config(directory, relay.url, proxy.port))
    outcomes: dict[str, object] = {}
    try:
        await trio.to_thread.run_sync(gateway.start, "gateway running")
        async with (
            _Recording(relay.url, key.pubkey, secret=secrets[0]) as alice,
            _Recording(relay.url, key.pubkey, secret=secrets[1]) as bob,
        ):
            legs = []
            for wallet, amount, to in ((alice, 1_000, pubs[1]), (bob, 900, pubs[0])):
                params = {
                    "asset_id": "gBTC",
                    "amount": amount,
                    "recipient_pubkey": to,
                    "batch_id": "swap-lost",
                    "fee": {"asset_id": "gBTC", "amount": FEE},
                }
                legs.append((wallet, wallet.intent("ark:swap_leg", params)))
            proxy.arm_lost("/ark.v1.ArkService/SubmitTx")
            await alice.call(
                "submit_batch",
                batch_id="swap-lost",
                intents=[msgspec.to_builtins(intent) for _, intent in legs],
            )

            async def run(wallet, intent) -> None:
                outcomes[wallet.pubkey] = await wallet.run_ceremony(
                    intent, timeout=120, publish=False
                )

            async with trio.open_nursery() as nursery:
                for wallet, intent in legs:
                    nursery.start_soon(run, wallet, intent)
            leader = min(legs, key=lambda w_i: session_id_for(w_i[1].id))[0]
            proving = {
                w.pubkey: [c for c in w.seen if c["context"]["tx_role"] == "intent_proof"]
                for w, _ in legs
            }
    finally:
        gateway.kill()
        proxy.stop()
    assert proxy.fired == ["/ark.v1.ArkService/SubmitTx"]
    for pub, outcome in outcomes.items():
        assert outcome.event.kind == Kind.CONFIRMATION, (pub, outcome.content, gateway.tail())
    assert proving[leader.pubkey], "the leader's author was not asked for a proof"
    assert [p for p, found in proving.items() if found] == [leader.pubkey]
    sim.kill()
    assert sim.log.read_text().count("accepted ark tx") == 1
