"""Recovering a submitted, never finalized ark tx through GetPendingTx, over real gRPC.

The gateway that submitted is gone with SubmitTx's answer: a fresh backend finds arkd (the
simulator) refusing the same tx as a duplicate, proves ownership of the spent VTXO with the
wallet's key, gets the answer back from GetPendingTx and finalizes. Proofs arkd refuses
are refused here for the same reasons.
"""

from __future__ import annotations

import time

import grpc
import pytest
import trio

from arkrelay_arkd import arktx, intentproof
from arkrelay_arkd._proto.ark.v1 import service_pb2, service_pb2_grpc, types_pb2
from arkrelay_arkd.errors import error_info
from arkrelay_arkd.sim import ArkdSimulator
from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import BackendError, ProtocolViolation, VtxoAlreadySpent, VtxoNotOwned
from arkrelay_core.interfaces import InputSignature, TxOutputSpec, Vtxo

from .conftest import Connect, Key


async def _submitted_then_forgotten(sim: ArkdSimulator, connect: Connect, key: Key, bob: Key):
    """Alice's VTXO spent to Bob by a SubmitTx whose answer is then lost with its backend."""
    sim.board(key.pub, 20_000)
    first = await connect()
    (vtxo,) = await first.list_vtxos(key.pub)
    built = await first.build_offchain_tx([vtxo], [TxOutputSpec(bob.pub, 20_000)])
    signed = first.add_signatures(
        built.ark_tx,
        [InputSignature(s.input_index, key.pub, key.sign(s.sighash)) for s in built.to_sign],
    )
    submitted = await first.submit_tx(signed, built.checkpoint_txs)
    return vtxo, signed, built.checkpoint_txs, submitted


def _sign(proof, key: Key) -> list[InputSignature]:
    return [InputSignature(s.input_index, key.pub, key.sign(s.sighash)) for s in proof.to_sign]


async def test_a_lost_submission_is_found_with_a_proof_and_finalized(
    sim: ArkdSimulator, connect: Connect
) -> None:
    alice, bob = Key(), Key()
    vtxo, signed, checkpoints, submitted = await _submitted_then_forgotten(sim, connect, alice, bob)

    restarted = await connect()  # a new process: no memory of the submission
    with pytest.raises(VtxoAlreadySpent, match="GetPendingTx"):
        await restarted.submit_tx(signed, checkpoints)

    proof = await restarted.build_ownership_proof([vtxo], expire_at=int(time.time()) + 120)
    assert [t.tx_role for t in proof.to_sign] == ["intent_proof"] * 2
    assert [t.vtxo_id for t in proof.to_sign] == ["", vtxo.vtxo_id]
    assert {t.owner for t in proof.to_sign} == {alice.pub}
    signed_proof = restarted.add_proof_signatures(proof, _sign(proof, alice))

    (pending,) = await restarted.get_pending_txs(signed_proof, proof.message)
    assert pending.ark_txid == submitted.ark_txid
    assert pending.final_ark_tx == submitted.final_ark_tx
    assert sorted(pending.signed_checkpoint_txs) == sorted(submitted.signed_checkpoint_txs)
    assert [t.vtxo_id for t in pending.to_sign] == [vtxo.vtxo_id]

    finals = [
        restarted.add_signatures(
            t.psbt, [InputSignature(t.input_index, alice.pub, alice.sign(t.sighash))]
        )
        for t in pending.to_sign
    ]
    finalized = await restarted.finalize_tx(pending.ark_txid, finals)
    assert finalized.spent == (vtxo.vtxo_id,)
    # (A fresh backend cannot name the owner of an output it did not build: script only.)
    assert [(v.script, v.amount) for v in finalized.created] == [(sim.script_of(bob.pub), 20_000)]
    assert [v.amount for v in await restarted.list_vtxos(bob.pub)] == [20_000]

    # Finalized: nothing is pending any more for that VTXO.
    assert await restarted.get_pending_txs(signed_proof, proof.message) == []


async def test_a_proof_signed_by_another_key_is_refused(
    sim: ArkdSimulator, connect: Connect
) -> None:
    alice, bob, mallory = Key(), Key(), Key()
    vtxo, *_ = await _submitted_then_forgotten(sim, connect, alice, bob)
    backend = await connect()
    proof = await backend.build_ownership_proof([vtxo], expire_at=int(time.time()) + 120)

    with pytest.raises(VtxoNotOwned):  # the backend checks before sending anything
        backend.add_proof_signatures(proof, _sign(proof, mallory))

    forged = intentproof.decode_proof(proof.proof)
    intentproof.sign_proof(forged, proof.message, mallory.secret)
    with pytest.raises(ProtocolViolation, match="INVALID_INTENT_PROOF") as caught:
        await backend.get_pending_txs(arktx.encode_psbt(forged), proof.message)
    assert caught.value.code == ErrorCode.INVALID_SIGNING_RESPONSE


async def test_an_unsigned_or_half_signed_proof_is_refused(
    sim: ArkdSimulator, connect: Connect
) -> None:
    alice, bob = Key(), Key()
    vtxo, *_ = await _submitted_then_forgotten(sim, connect, alice, bob)
    backend = await connect()
    proof = await backend.build_ownership_proof([vtxo], expire_at=0)
    with pytest.raises(ProtocolViolation, match="input 0 has no tapscript signatures"):
        await backend.get_pending_txs(proof.proof, proof.message)
    only_vtxo_input = [s for s in _sign(proof, alice) if s.input_index == 1]
    half = backend.add_proof_signatures(proof, only_vtxo_input)
    with pytest.raises(ProtocolViolation, match="input 0 has no tapscript signatures"):
        await backend.get_pending_txs(half, proof.message)


async def test_a_proof_for_another_vtxo_finds_nothing(sim: ArkdSimulator, connect: Connect) -> None:
    alice, bob = Key(), Key()
    await _submitted_then_forgotten(sim, connect, alice, bob)
    sim.board(alice.pub, 7_000)
    backend = await connect()
    (unspent,) = await backend.list_vtxos(alice.pub)
    proof = await backend.build_ownership_proof([unspent], expire_at=0)
    signed = backend.add_proof_signatures(proof, _sign(proof, alice))
    assert await backend.get_pending_txs(signed, proof.message) == []


async def test_a_proof_of_someone_elses_pending_vtxo_is_refused(
    sim: ArkdSimulator, connect: Connect
) -> None:
    """Mallory proves Alice's pending VTXO, claiming it is hers: the witness utxo must be the
    VTXO's real script, and then only Alice's signature verifies."""
    alice, bob, mallory = Key(), Key(), Key()
    vtxo, *_ = await _submitted_then_forgotten(sim, connect, alice, bob)
    backend = await connect()
    claimed = Vtxo(
        vtxo_id=vtxo.vtxo_id,
        owner=mallory.pub,
        amount=vtxo.amount,
        script=sim.script_of(mallory.pub),
        expires_at=vtxo.expires_at,
    )
    proof = await backend.build_ownership_proof([claimed], expire_at=0)
    signed = backend.add_proof_signatures(proof, _sign(proof, mallory))
    with pytest.raises(BackendError, match="INVALID_PSBT_INPUT: invalid witness utxo script"):
        await backend.get_pending_txs(signed, proof.message)


async def test_an_expired_proof_is_refused(sim: ArkdSimulator, connect: Connect) -> None:
    alice, bob = Key(), Key()
    vtxo, *_ = await _submitted_then_forgotten(sim, connect, alice, bob)
    backend = await connect()
    proof = await backend.build_ownership_proof([vtxo], expire_at=int(time.time()) - 5)
    signed = backend.add_proof_signatures(proof, _sign(proof, alice))
    with pytest.raises(BackendError, match="INVALID_INTENT_TIMERANGE: proof of ownership expired"):
        await backend.get_pending_txs(signed, proof.message)


async def test_the_proof_holds_only_for_the_message_it_was_signed_for(
    sim: ArkdSimulator, connect: Connect
) -> None:
    alice, bob = Key(), Key()
    vtxo, *_ = await _submitted_then_forgotten(sim, connect, alice, bob)
    backend = await connect()
    proof = await backend.build_ownership_proof([vtxo], expire_at=int(time.time()) + 60)
    signed = backend.add_proof_signatures(proof, _sign(proof, alice))
    later = intentproof.get_pending_tx_message(proof.expire_at + 3600)
    with pytest.raises(ProtocolViolation, match="wrong tx hash in message input"):
        await backend.get_pending_txs(signed, later)
    spaced = proof.message.replace(",", ", ")  # same content, another spelling: arkd re-encodes
    assert (await backend.get_pending_txs(signed, spaced))[0].final_ark_tx


def _raw(sim: ArkdSimulator) -> service_pb2_grpc.ArkServiceStub:
    channel = grpc.insecure_channel(f"127.0.0.1:{sim.port}")
    return service_pb2_grpc.ArkServiceStub(channel)


@pytest.mark.parametrize(
    ("intent", "text"),
    [
        (None, "missing identifier"),
        (types_pb2.Intent(proof="", message="{}"), "missing intent proof"),
        (
            types_pb2.Intent(proof="bm90IGEgcHNidA==", message="{}"),
            "failed to parse intent proof tx",
        ),
        (types_pb2.Intent(proof="PROOF", message=""), "missing message"),
        (
            types_pb2.Intent(proof="PROOF", message='{"type":"delete","expire_at":0}'),
            "invalid get-pending-tx intent message",
        ),
    ],
)
async def test_malformed_requests_get_arkds_bare_invalid_argument(
    sim: ArkdSimulator, connect: Connect, intent: types_pb2.Intent | None, text: str
) -> None:
    alice = Key()
    sim.board(alice.pub, 5_000)
    backend = await connect()
    (vtxo,) = await backend.list_vtxos(alice.pub)
    proof = await backend.build_ownership_proof([vtxo], expire_at=0)
    if intent is not None and intent.proof == "PROOF":
        intent.proof = proof.proof
    request = (
        service_pb2.GetPendingTxRequest(intent=intent)
        if intent
        else service_pb2.GetPendingTxRequest()
    )
    stub = _raw(sim)
    with pytest.raises(grpc.RpcError) as caught:
        await trio.to_thread.run_sync(lambda: stub.GetPendingTx(request, timeout=5))
    info = error_info(caught.value)
    assert (info.code, info.name) == (grpc.StatusCode.INVALID_ARGUMENT, "")
    assert text in info.message


async def test_resubmitting_the_same_tx_is_refused_as_arkd_refuses_it(
    sim: ArkdSimulator, connect: Connect
) -> None:
    alice, bob = Key(), Key()
    _, signed, checkpoints, submitted = await _submitted_then_forgotten(sim, connect, alice, bob)
    stub = _raw(sim)
    request = service_pb2.SubmitTxRequest(signed_ark_tx=signed, checkpoint_txs=list(checkpoints))
    with pytest.raises(grpc.RpcError) as caught:
        await trio.to_thread.run_sync(lambda: stub.SubmitTx(request, timeout=5))
    info = error_info(caught.value)
    assert (info.code, info.name) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARK_PSBT")
    assert info.message == f"duplicated offchain tx {submitted.ark_txid}"
    assert info.metadata == {"tx": signed}
