"""The reference wallet finishes a spend alone when the gateway vanished after SubmitTx:
against the arkd simulator over real gRPC, with its own key (coincurve), no gateway."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
import trio
from arkrelay_arkd import arktx
from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.settings import ArkdSettings
from arkrelay_arkd.sim import ArkdSimulator
from arkrelay_wallet.checks import ChallengeRefused
from arkrelay_wallet.recovery import (
    check_ownership_proof,
    finalize_handed_over,
    finalize_pending,
    finalize_submitted,
)
from arkrelay_wallet.restark import ArkServerRest

from arkrelay_core.config import Duration, HostPort
from arkrelay_core.interfaces import InputSignature, SubmittedTx, TxOutputSpec
from arkrelay_core.nostr import bip340
from arkrelay_core.protocol import PendingArkTx


@dataclasses.dataclass
class Key:
    secret: bytes

    @property
    def pub(self) -> str:
        return bip340.xonly_public_key(self.secret).hex()

    def sign(self, sighash: str) -> str:
        return bip340.schnorr_sign(self.secret, bytes.fromhex(sighash)).hex()


def new_key() -> Key:
    return Key(bip340.generate_secret_key())


@pytest.fixture
def sim() -> Iterator[ArkdSimulator]:
    simulator = ArkdSimulator()
    simulator.start(0)
    yield simulator
    simulator.stop()


@pytest.fixture
async def connect(sim: ArkdSimulator, nursery: trio.Nursery) -> AsyncIterator[object]:
    async def make() -> ArkdBackend:
        assert sim.port is not None
        backend = ArkdBackend(
            ArkdSettings(target=HostPort("127.0.0.1", sim.port), call_timeout=Duration(5))
        )
        await nursery.start(backend.serve)
        return backend

    yield make


async def _gateway_submits_then_vanishes(sim, connect, alice: Key, bob: Key) -> SubmittedTx:
    sim.board(alice.pub, 30_000)
    gateway = await connect()
    (vtxo,) = await gateway.list_vtxos(alice.pub)
    built = await gateway.build_offchain_tx([vtxo], [TxOutputSpec(bob.pub, 30_000)])
    signed = gateway.add_signatures(
        built.ark_tx,
        [InputSignature(s.input_index, alice.pub, alice.sign(s.sighash)) for s in built.to_sign],
    )
    return await gateway.submit_tx(signed, built.checkpoint_txs)


async def test_the_wallet_finalizes_through_get_pending_tx(sim, connect) -> None:
    alice, bob = new_key(), new_key()
    submitted = await _gateway_submits_then_vanishes(sim, connect, alice, bob)
    own = await connect()  # the wallet's own connection to arkd
    assert await own.list_vtxos(bob.pub) == []

    done = await finalize_pending(own, alice.secret)
    assert [d.ark_txid for d in done] == [submitted.ark_txid]
    assert [v.amount for v in await own.list_vtxos(bob.pub)] == [30_000]
    assert await finalize_pending(own, alice.secret) == []  # nothing left pending


async def test_the_wallet_finalizes_what_it_holds_without_a_proof(sim, connect) -> None:
    alice, bob = new_key(), new_key()
    submitted = await _gateway_submits_then_vanishes(sim, connect, alice, bob)
    own = await connect()
    done = await finalize_pending(own, alice.secret, held=[submitted])
    assert [d.ark_txid for d in done] == [submitted.ark_txid]
    assert [v.amount for v in await own.list_vtxos(bob.pub)] == [30_000]


async def test_the_wallet_does_not_finalize_a_tx_without_its_own_signature(sim, connect) -> None:
    alice, bob = new_key(), new_key()
    submitted = await _gateway_submits_then_vanishes(sim, connect, alice, bob)
    ark = arktx.decode_psbt(submitted.final_ark_tx)
    for i in range(len(ark.inputs)):
        sigs = ark.inputs[i].taproot_sigs
        for key in [k for k in sigs if k[0].xonly().hex() == alice.pub]:
            del sigs[key]
    stripped = msgspec.structs.replace(submitted, final_ark_tx=arktx.encode_psbt(ark))
    own = await connect()
    with pytest.raises(ChallengeRefused, match="does not carry this wallet's signature"):
        await finalize_submitted(own, alice.secret, stripped)
    assert await own.list_vtxos(bob.pub) == []


async def test_the_wallet_checks_a_proof_before_signing_it(sim, connect) -> None:
    alice, bob = new_key(), new_key()
    submitted = await _gateway_submits_then_vanishes(sim, connect, alice, bob)
    own = await connect()
    spent = await own.list_vtxos(alice.pub, spendable_only=False)
    proof = await own.build_ownership_proof(spent, expire_at=0)
    check_ownership_proof(proof, spent, alice.pub)

    # A checkpoint's sighash passed off as a proof challenge: that signature could spend.
    swapped = msgspec.structs.replace(
        proof,
        to_sign=(
            msgspec.structs.replace(proof.to_sign[0], sighash=submitted.to_sign[0].sighash),
            *proof.to_sign[1:],
        ),
    )
    with pytest.raises(ChallengeRefused, match="is not the proof's"):
        check_ownership_proof(swapped, spent, alice.pub)
    # The same proof sent with another message than it commits to.
    other = msgspec.structs.replace(proof, message=proof.message.replace("0", "1"))
    with pytest.raises(ChallengeRefused, match="does not commit to the proof's message"):
        check_ownership_proof(other, spent, alice.pub)


# ------------------------------------------------------------------ over arkd's REST interface
#
# A wallet that knows only the Ark server's URL (get_info's ark.server_url): the same
# recovery, the same checks, through the simulator's REST interface.


@pytest.fixture
async def server_url(sim: ArkdSimulator, nursery: trio.Nursery) -> str:
    return await nursery.start(sim.serve_rest, 0)


async def test_over_rest_the_wallet_finalizes_through_get_pending_tx(
    sim, connect, server_url: str
) -> None:
    alice, bob = new_key(), new_key()
    submitted = await _gateway_submits_then_vanishes(sim, connect, alice, bob)
    own = ArkServerRest(server_url, timeout=10)
    assert await own.list_vtxos(alice.pub) == []  # locked by the pending tx

    [done] = await finalize_pending(own, alice.secret)
    assert done.ark_txid == submitted.ark_txid
    assert [(v.vtxo_id, v.amount) for v in done.created] == [(f"{submitted.ark_txid}:0", 30_000)]
    assert [v.amount for v in await own.list_vtxos(bob.pub)] == [30_000]
    assert sim.ledger.pending_txs() == []
    assert await finalize_pending(own, alice.secret) == []


async def test_over_rest_a_handed_over_pending_tx_is_finalized(
    sim, connect, server_url: str
) -> None:
    alice, bob = new_key(), new_key()
    submitted = await _gateway_submits_then_vanishes(sim, connect, alice, bob)
    pending = PendingArkTx(
        ark_txid=submitted.ark_txid,
        final_ark_tx=submitted.final_ark_tx,
        checkpoint_txs=list(submitted.signed_checkpoint_txs),
    )
    own = ArkServerRest(server_url, timeout=10)
    done = await finalize_handed_over(own, alice.secret, pending)
    assert [v.amount for v in done.created] == [30_000]
    assert [v.amount for v in await own.list_vtxos(bob.pub)] == [30_000]


async def test_over_rest_a_pending_tx_without_the_wallets_signature_is_refused(
    sim, connect, server_url: str
) -> None:
    alice, bob = new_key(), new_key()
    submitted = await _gateway_submits_then_vanishes(sim, connect, alice, bob)
    ark = arktx.decode_psbt(submitted.final_ark_tx)
    for i in range(len(ark.inputs)):
        sigs = ark.inputs[i].taproot_sigs
        for key in [k for k in sigs if k[0].xonly().hex() == alice.pub]:
            del sigs[key]
    pending = PendingArkTx(
        ark_txid=submitted.ark_txid,
        final_ark_tx=arktx.encode_psbt(ark),
        checkpoint_txs=list(submitted.signed_checkpoint_txs),
    )
    own = ArkServerRest(server_url, timeout=10)
    with pytest.raises(ChallengeRefused, match="does not carry this wallet's signature"):
        await finalize_handed_over(own, alice.secret, pending)
    assert [t for t, _, _ in sim.ledger.pending_txs()] == [submitted.ark_txid]
    assert await own.list_vtxos(bob.pub) == []
