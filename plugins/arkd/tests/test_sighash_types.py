"""Signatures of every BIP341 hash type on what a wallet signs in a batch, judged as arkd
v0.9.15 judges them: it hashes each PSBT signature under the type the signature declares
(btcd's ``CalcTapscriptSignaturehash``, from ark-lib's ``VerifyTapscriptSigs`` for
ownership proofs and boarding inputs and the tx builder's ``verifyTapscriptPartialSigs``
for forfeits), so any BIP341 type is accepted and a type with no digest is refused with
btcd's text; so for the owner's signatures on an offchain tx and its checkpoints
(``verifyTapscriptPartialSigs`` again). A wallet built on embit 0.8 signs SINGLE and
ANYONECANPAY over a wrong digest; the simulator must refuse those signatures."""

from __future__ import annotations

import re
from collections.abc import Iterator

import grpc
import pytest
import trio

from arkrelay_arkd import arktx
from arkrelay_arkd._proto.ark.v1 import service_pb2, service_pb2_grpc
from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.sim import ArkdSimulator
from arkrelay_arkd.sim.batch import BatchConfig
from arkrelay_core.bitcoin import SIGHASH_ALL, SIGHASH_ANYONECANPAY, SIGHASH_SINGLE
from arkrelay_core.interfaces import TxOutputSpec
from arkrelay_core.nostr import bip340

from .batch_client import Coin, Tamper, Wallet, embit_leaf_sighash, settle
from .conftest import Key
from .fakechain import FakeChain
from .test_batch import arkd_error, board, vtxos_of

ALL_ACP = SIGHASH_ALL | SIGHASH_ANYONECANPAY
SINGLE_ACP = SIGHASH_SINGLE | SIGHASH_ANYONECANPAY


@pytest.fixture
def fake_chain() -> FakeChain:
    return FakeChain()


@pytest.fixture
def channel(fake_chain: FakeChain) -> Iterator[grpc.Channel]:
    simulator = ArkdSimulator(chain=fake_chain, batch_config=BatchConfig(session_duration=4.0))
    simulator.batches.fund_wallet(5_000_000)
    simulator.start(0)
    try:
        with grpc.insecure_channel(simulator.target) as ch:
            yield ch
    finally:
        simulator.stop()


def _vtxo(channel: grpc.Channel, chain: FakeChain, wallet: Wallet, amount: int) -> Coin:
    assert settle(wallet, [board(wallet, chain, amount)]).failed == ""
    [vtxo] = vtxos_of(channel, wallet)
    return Coin(vtxo.outpoint.txid, vtxo.outpoint.vout, vtxo.amount, wallet.vtxo_tree(), False)


# ------------------------------------------------------------------ ownership proofs


def test_a_proof_signed_all_anyonecanpay_settles(
    fake_chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    outcome = settle(wallet, [board(wallet, fake_chain, 30_000)], Tamper(proof_hash_type=ALL_ACP))
    assert outcome.failed == ""
    assert outcome.commitment_txid in fake_chain.broadcasts


def test_a_proof_signed_single_anyonecanpay_is_refused_where_arkd_has_no_digest(
    fake_chain: FakeChain, channel: grpc.Channel
) -> None:
    """The proof pays one output, so SIGHASH_SINGLE has none for input 1: btcd's
    ``invalid sighash type for input``. Input 0 (output 0 exists) hashes and verifies."""
    wallet = Wallet(channel)
    coin = board(wallet, fake_chain, 30_000)
    with pytest.raises(grpc.RpcError) as refused:
        wallet.register([coin], Tamper(proof_hash_type=SINGLE_ACP))
    details = arkd_error(refused.value)
    assert (details.code, details.name) == (23, "INVALID_INTENT_PROOF")
    # arkd's service prefixes Verify's error, which carries the prefix already.
    assert details.message == (
        "invalid intent proof: invalid intent proof: failed to compute hash for signature 0 "
        "of input 1: invalid sighash type for input"
    )


@pytest.mark.parametrize("hash_type", [ALL_ACP, SINGLE_ACP])
def test_a_proof_signed_over_embits_digest_is_refused(
    fake_chain: FakeChain, channel: grpc.Channel, hash_type: int
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, fake_chain, 30_000)
    with pytest.raises(grpc.RpcError) as refused:
        wallet.register([coin], Tamper(proof_hash_type=hash_type, embit_digest=True))
    details = arkd_error(refused.value)
    assert details.name == "INVALID_INTENT_PROOF"
    assert details.message.startswith(
        "invalid intent proof: invalid intent proof: invalid sig 0 for input 0 with prevout "
    )


# ------------------------------------------------------------------ forfeits


def test_a_forfeit_signed_single_anyonecanpay_renews_the_vtxo(
    fake_chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = _vtxo(channel, fake_chain, wallet, 40_000)

    renewed = settle(Wallet(channel, wallet.secret), [coin], Tamper(forfeit_hash_type=SINGLE_ACP))

    assert renewed.failed == ""
    assert renewed.commitment_txid in fake_chain.broadcasts
    vtxos = {v.outpoint.txid: v for v in vtxos_of(channel, wallet)}
    assert vtxos[coin.txid].is_spent
    assert vtxos[coin.txid].spent_by not in ("", renewed.commitment_txid)  # the forfeit


@pytest.mark.parametrize(
    "tamper",
    [Tamper(forfeit_hash_type=SINGLE_ACP, embit_digest=True), Tamper(forfeit_hash_type=0x84)],
    ids=["embit-digest", "undefined-type"],
)
def test_a_forfeit_signed_over_a_wrong_digest_fails_the_batch(
    fake_chain: FakeChain, channel: grpc.Channel, tamper: Tamper
) -> None:
    wallet = Wallet(channel)
    coin = _vtxo(channel, fake_chain, wallet, 40_000)

    outcome = settle(Wallet(channel, wallet.secret), [coin], tamper)

    assert outcome.failed == "invalid forfeit txs signature"
    [still] = vtxos_of(channel, wallet)
    assert not still.is_spent


# ------------------------------------------------------------------ boarding inputs


def test_a_boarding_input_signed_over_embits_digest_is_refused(
    fake_chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, fake_chain, 30_000)
    with pytest.raises(grpc.RpcError) as refused:
        settle(wallet, [coin], Tamper(boarding_hash_type=ALL_ACP, embit_digest=True))
    details = arkd_error(refused.value)
    assert details.name == "INVALID_BOARDING_INPUT_SIG"
    assert re.fullmatch(
        f"failed to verify boarding tapscript sigs: invalid sig 0 for input \\d+ with prevout "
        f"{coin.outpoint}",
        details.message,
    ), details.message
    assert len(fake_chain.broadcasts) == 0


def test_a_boarding_signature_of_an_undefined_hash_type_carries_btcds_text(
    fake_chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, fake_chain, 30_000)
    with pytest.raises(grpc.RpcError) as refused:
        settle(wallet, [coin], Tamper(boarding_hash_type=0x84))
    details = arkd_error(refused.value)
    assert details.name == "INVALID_BOARDING_INPUT_SIG"
    assert re.fullmatch(
        "failed to verify boarding tapscript sigs: failed to compute hash for signature 0 of "
        "input \\d+: invalid taproot sighash type: 132",
        details.message,
    ), details.message


# ------------------------------------------------------------------ offchain txs


def _signed(psbt_b64: str, index: int, key: Key, hash_type: int, *, embit: bool = False) -> str:
    packet = arktx.decode_psbt(psbt_b64)
    if embit:
        digest = embit_leaf_sighash(packet, index, hash_type)
        signature = bip340.schnorr_sign(key.secret, digest) + bytes([hash_type])
        arktx.add_signature(packet, index, bytes.fromhex(key.pub), signature)
    else:
        arktx.sign_input(packet, index, key.secret, hash_type)
    return arktx.encode_psbt(packet)


async def test_an_offchain_tx_signed_single_anyonecanpay_is_accepted(
    sim: ArkdSimulator, backend: ArkdBackend
) -> None:
    """arkd's SubmitOffchainTx and FinalizeOffchainTx check the owner's signatures with
    the tx builder's ``verifyTapscriptPartialSigs``: the signature's own hash type."""
    alice, bob = Key(), Key()
    sim.board(alice.pub, 5_000)
    [funded] = await backend.list_vtxos(alice.pub)
    built = await backend.build_offchain_tx([funded], [TxOutputSpec(bob.pub, 5_000)])

    signed = _signed(built.ark_tx, 0, alice, SINGLE_ACP)
    submitted = await backend.submit_tx(signed, built.checkpoint_txs)
    finals = [_signed(s.psbt, 0, alice, SINGLE_ACP) for s in submitted.to_sign]
    done = await backend.finalize_tx(submitted.ark_txid, finals)

    assert done.spent == (funded.vtxo_id,)
    assert [v.amount for v in await backend.list_vtxos(bob.pub)] == [5_000]


async def test_an_offchain_tx_signed_over_embits_digest_is_refused(
    sim: ArkdSimulator, backend: ArkdBackend
) -> None:
    alice, bob = Key(), Key()
    sim.board(alice.pub, 5_000)
    [funded] = await backend.list_vtxos(alice.pub)
    built = await backend.build_offchain_tx([funded], [TxOutputSpec(bob.pub, 5_000)])
    signed = _signed(built.ark_tx, 0, alice, SINGLE_ACP, embit=True)

    request = service_pb2.SubmitTxRequest(
        signed_ark_tx=signed, checkpoint_txs=list(built.checkpoint_txs)
    )
    with grpc.insecure_channel(sim.target) as ch:
        stub = service_pb2_grpc.ArkServiceStub(ch)
        with pytest.raises(grpc.RpcError) as refused:
            await trio.to_thread.run_sync(lambda: stub.SubmitTx(request, timeout=5))
    details = arkd_error(refused.value)
    txid = arktx.txid(arktx.decode_psbt(signed))
    assert (details.name, details.message) == (
        "INVALID_SIGNATURE",
        f"invalid signature in ark tx {txid}",
    )
    assert [v.vtxo_id for v in await backend.list_vtxos(alice.pub)] == [funded.vtxo_id]
