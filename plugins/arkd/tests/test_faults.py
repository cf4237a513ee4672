"""The client against the simulator over real gRPC: error mapping, retries across a
restart, the circuit breaker, and stream cancellation."""

from __future__ import annotations

import grpc
import pytest
import trio

from arkrelay_arkd import arktx
from arkrelay_arkd._proto.ark.v1 import service_pb2, service_pb2_grpc
from arkrelay_arkd.errors import error_info
from arkrelay_arkd.sim import ArkdSimulator
from arkrelay_core.codes import ErrorCode
from arkrelay_core.config import Duration
from arkrelay_core.errors import (
    ArkRelayError,
    BackendUnavailable,
    CircuitOpen,
    ProtocolViolation,
    VtxoNotOwned,
)
from arkrelay_core.interfaces import ArkEvent, InputSignature, TxOutputSpec

from .conftest import Connect, Key


async def _funded(sim: ArkdSimulator, backend, key: Key, amount: int = 5_000):  # type: ignore[no-untyped-def]
    sim.board(key.pub, amount)
    [vtxo] = await backend.list_vtxos(key.pub)
    return vtxo


async def test_server_rejects_a_bad_signature_with_arkds_error(
    sim: ArkdSimulator, connect: Connect
) -> None:
    backend = await connect()
    alice, bob = Key(), Key()
    vtxo = await _funded(sim, backend, alice)
    built = await backend.build_offchain_tx([vtxo], [TxOutputSpec(bob.pub, vtxo.amount)])
    # Bypass add_signatures' local check: put a signature over the wrong digest in the PSBT.
    packet = arktx.decode_psbt(built.ark_tx)
    arktx.add_signature(packet, 0, bytes.fromhex(alice.pub), bytes.fromhex(alice.sign("ab" * 32)))
    bad = arktx.encode_psbt(packet)

    channel = grpc.insecure_channel(sim.target)
    stub = service_pb2_grpc.ArkServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raw:
        await trio.to_thread.run_sync(
            lambda: stub.SubmitTx(
                service_pb2.SubmitTxRequest(signed_ark_tx=bad, checkpoint_txs=built.checkpoint_txs),
                timeout=5,
            )
        )
    channel.close()
    info = error_info(raw.value)
    assert (info.code, info.name) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SIGNATURE")

    with pytest.raises(ProtocolViolation) as mapped:
        await backend.submit_tx(bad, built.checkpoint_txs)
    assert mapped.value.code == ErrorCode.INVALID_SIGNING_RESPONSE
    # The refusal left the VTXO spendable.
    assert [v.vtxo_id for v in await backend.list_vtxos(alice.pub)] == [vtxo.vtxo_id]


async def test_unknown_inputs_and_unknown_txs_are_mapped(
    sim: ArkdSimulator, connect: Connect
) -> None:
    backend = await connect()
    with pytest.raises(ArkRelayError) as exc:
        await backend.finalize_tx("00" * 32, [])
    assert exc.value.code == ErrorCode.INTERNAL and "TX_NOT_FOUND" in str(exc.value)
    info = await backend.get_info()
    ghost = Key()
    sim.board(ghost.pub, 1_000)
    [vtxo] = await backend.list_vtxos(ghost.pub)
    missing = vtxo.__class__(
        **{**{f: getattr(vtxo, f) for f in vtxo.__struct_fields__}, "vtxo_id": "11" * 32 + ":0"}
    )
    built = await backend.build_offchain_tx([missing], [TxOutputSpec(ghost.pub, 1_000)])
    signed = backend.add_signatures(
        built.ark_tx, [InputSignature(0, ghost.pub, ghost.sign(built.to_sign[0].sighash))]
    )
    with pytest.raises(VtxoNotOwned, match="VTXO_NOT_FOUND"):
        await backend.submit_tx(signed, built.checkpoint_txs)
    assert info.signer_pubkey == sim.ledger.signer_xonly.hex()


async def test_retries_ride_out_a_restart(sim: ArkdSimulator, connect: Connect) -> None:
    backend = await connect(retries=8, backoff_initial=Duration(0.1), backoff_max=Duration(0.3))
    await backend.get_info()
    sim.stop()

    async def restart_soon() -> None:
        await trio.sleep(0.4)
        sim.start()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(restart_soon)
            info = await backend.get_info()
    assert info.network == "regtest"
    stats = backend.statistics()
    assert stats["retries"] >= 1 and stats["breaker"]["state"] == "closed"  # type: ignore[index]


async def test_breaker_opens_after_five_failures_and_recovers(
    sim: ArkdSimulator, connect: Connect
) -> None:
    backend = await connect(retries=0, breaker_reset=Duration(1))
    sim.stop()
    for _ in range(5):
        with pytest.raises(BackendUnavailable) as down:
            await backend.get_info()
        assert down.value.code == ErrorCode.ARK_UNAVAILABLE
    calls = backend.caller.calls
    with pytest.raises(CircuitOpen) as open_:
        await backend.get_info()
    assert open_.value.code == ErrorCode.CIRCUIT_OPEN
    assert backend.caller.calls == calls  # refused without calling arkd
    sim.start()
    await trio.sleep(1.1)
    assert (await backend.get_info()).network == "regtest"  # the half-open trial closes it
    assert backend.caller.breaker.state == "closed"


async def test_stream_delivers_events_and_cancellation_closes_the_call(
    sim: ArkdSimulator, connect: Connect
) -> None:
    backend = await connect()
    send, receive = trio.open_memory_channel[ArkEvent](4)
    alice = Key()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.stream_events, send)
            assert len(sim.ledger._subscribers) == 1
            boarded = sim.board(alice.pub, 2_000)
            event = await receive.receive()
            assert (event.kind, [v.vtxo_id for v in event.created]) == (
                "commitment_tx",
                [boarded.outpoint],
            )
            nursery.cancel_scope.cancel()
        # The reader thread has finished and the server saw the call end.
        # The servicer runs on the server's threads: poll its state.
        while sim.ledger._subscribers:  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_stream_reconnects_after_the_server_restarts(
    sim: ArkdSimulator, connect: Connect
) -> None:
    backend = await connect()
    send, receive = trio.open_memory_channel[ArkEvent](4)
    alice = Key()
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.stream_events, send)
            sim.stop()
            sim.start()
            while not sim.ledger._subscribers:  # noqa: ASYNC110 - set on a server thread
                await trio.sleep(0.05)
            sim.board(alice.pub, 2_000)
            event = await receive.receive()
            assert event.kind == "commitment_tx"
            assert backend.stream_reconnects >= 1
            nursery.cancel_scope.cancel()
