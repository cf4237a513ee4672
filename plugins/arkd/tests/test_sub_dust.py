"""Outputs below dust: arkd's ``OP_RETURN <output key>`` form, end to end over gRPC.

arkd v0.9.15 accepts such an output when vtxo_min_amount <= amount < dust, counts it
against max_op_return_outputs, and creates a VTXO that is swept from the start: listed
under the owner's P2TR script, refused as an offchain input (VTXO_RECOVERABLE).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc
import pytest
import trio
from embit.psbt import PSBT

from arkrelay_arkd import arktx, offchain
from arkrelay_arkd._proto.ark.v1 import service_pb2, service_pb2_grpc
from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.convert import server_params
from arkrelay_arkd.errors import error_info
from arkrelay_arkd.sim import ArkdSimulator, Ledger, rules
from arkrelay_arkd.sim.errors import ArkdError
from arkrelay_arkd.tapscript import ANCHOR_SCRIPT, default_vtxo_tree
from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import ProtocolViolation, VtxoExpired
from arkrelay_core.interfaces import ArkEvent, FinalizedTx, InputSignature, TxOutputSpec, Vtxo

from .conftest import Key


def _sign_all(backend: ArkdBackend, key: Key, psbt: str, indexes: Sequence[int]) -> str:
    packet = arktx.decode_psbt(psbt)
    sigs = [
        InputSignature(i, key.pub, key.sign(arktx.tapscript_sighash(packet, i).hex()))
        for i in indexes
    ]
    return backend.add_signatures(psbt, sigs)


async def _transfer(
    backend: ArkdBackend, key: Key, inputs: Sequence[Vtxo], outputs: Sequence[TxOutputSpec]
) -> FinalizedTx:
    built = await backend.build_offchain_tx(inputs, outputs)
    signed = _sign_all(backend, key, built.ark_tx, range(len(inputs)))
    submitted = await backend.submit_tx(signed, built.checkpoint_txs)
    finals = [_sign_all(backend, key, s.psbt, [0]) for s in submitted.to_sign]
    return await backend.finalize_tx(submitted.ark_txid, finals)


@pytest.fixture
def sim() -> Iterator[ArkdSimulator]:
    """A simulator that allows sub-dust outputs: arkd's default minimum is the dust limit
    (ARKD_VTXO_MIN_AMOUNT=-1), so these tests set arkd's regtest value, 1, explicitly."""
    simulator = ArkdSimulator(Ledger(vtxo_min_amount=1))
    simulator.start(0)
    yield simulator
    simulator.stop()


def _p2tr(sim: ArkdSimulator, owner: str) -> bytes:
    return bytes.fromhex(sim.script_of(owner))


async def test_fee_and_change_below_dust_become_swept_vtxos(
    sim: ArkdSimulator, backend: ArkdBackend
) -> None:
    alice, bob, gateway = Key(), Key(), Key()
    sim.board(alice.pub, 1_000)
    [funded] = await backend.list_vtxos(alice.pub)
    outputs = [
        TxOutputSpec(bob.pub, 890),
        TxOutputSpec(gateway.pub, 10),
        TxOutputSpec(alice.pub, 100),
    ]
    built = await backend.build_offchain_tx([funded], outputs)
    vout = arktx.decode_psbt(built.ark_tx).tx.vout
    assert [(o.script_pubkey.data, o.value) for o in vout] == [
        (_p2tr(sim, bob.pub), 890),
        (b"\x6a\x20" + _p2tr(sim, gateway.pub)[2:], 10),
        (b"\x6a\x20" + _p2tr(sim, alice.pub)[2:], 100),
        (ANCHOR_SCRIPT, 0),
    ]

    done = await _transfer(backend, alice, [funded], outputs)
    created = {v.owner: v for v in done.created}
    assert {o: (v.amount, v.status, v.script) for o, v in created.items()} == {
        bob.pub: (890, "spendable", sim.script_of(bob.pub)),
        gateway.pub: (10, "swept", sim.script_of(gateway.pub)),
        alice.pub: (100, "swept", sim.script_of(alice.pub)),
    }
    assert created[gateway.pub].vtxo_id == f"{done.ark_txid}:1"
    # Listed under the owner's default (P2TR) script, but never as spendable.
    listed = await backend.list_vtxos(gateway.pub, spendable_only=False)
    assert [(v.vtxo_id, v.amount, v.owner, v.status) for v in listed] == [
        (created[gateway.pub].vtxo_id, 10, gateway.pub, "swept")
    ]
    assert await backend.list_vtxos(gateway.pub) == []
    assert [v.amount for v in await backend.list_vtxos(bob.pub)] == [890]
    # A batch does not settle them either; it takes an owner's intent (not simulated).
    sim.mine_batch()
    [still] = await backend.get_vtxos([created[alice.pub].vtxo_id])
    assert (still.status, still.is_preconfirmed) == ("swept", True)


async def test_sub_dust_vtxo_is_refused_as_an_offchain_input(
    sim: ArkdSimulator, backend: ArkdBackend
) -> None:
    alice, gateway = Key(), Key()
    sim.board(alice.pub, 1_000)
    [funded] = await backend.list_vtxos(alice.pub)
    done = await _transfer(
        backend, alice, [funded], [TxOutputSpec(gateway.pub, 10), TxOutputSpec(alice.pub, 990)]
    )
    [fee] = [v for v in done.created if v.owner == gateway.pub]
    bigger = sim.board(gateway.pub, 400)
    [big] = await backend.list_vtxos(gateway.pub)
    assert big.vtxo_id == bigger.outpoint

    # The client builds the spend (a 10-sat checkpoint output for the 10-sat VTXO) ...
    built = await backend.build_offchain_tx([big, fee], [TxOutputSpec(alice.pub, 410)])
    checkpoint_outputs = [arktx.decode_psbt(cp).tx.vout[0].value for cp in built.checkpoint_txs]
    assert checkpoint_outputs == [400, 10]
    signed = _sign_all(backend, gateway, built.ark_tx, [0, 1])

    # ... and arkd refuses it: the VTXO is swept, so recoverable only.
    channel = grpc.insecure_channel(sim.target)
    stub = service_pb2_grpc.ArkServiceStub(channel)
    request = service_pb2.SubmitTxRequest(
        signed_ark_tx=signed, checkpoint_txs=list(built.checkpoint_txs)
    )
    with pytest.raises(grpc.RpcError) as raw:
        await trio.to_thread.run_sync(lambda: stub.SubmitTx(request, timeout=5))
    channel.close()
    info = error_info(raw.value)
    assert (info.name, info.metadata) == ("VTXO_RECOVERABLE", {"vtxo_outpoint": fee.vtxo_id})
    with pytest.raises(VtxoExpired) as mapped:
        await backend.submit_tx(signed, built.checkpoint_txs)
    assert mapped.value.code == ErrorCode.VTXO_EXPIRED
    # Nothing was locked: the bigger VTXO is still spendable on its own.
    assert [v.vtxo_id for v in await backend.list_vtxos(gateway.pub)] == [big.vtxo_id]
    again = await _transfer(backend, gateway, [big], [TxOutputSpec(alice.pub, 400)])
    assert again.spent == (big.vtxo_id,)


async def test_client_refuses_zero_and_too_many_sub_dust_outputs(
    sim: ArkdSimulator, backend: ArkdBackend
) -> None:
    alice, bob = Key(), Key()
    sim.board(alice.pub, 1_000)
    [funded] = await backend.list_vtxos(alice.pub)
    with pytest.raises(ProtocolViolation) as zero:
        await backend.build_offchain_tx(
            [funded], [TxOutputSpec(bob.pub, 0), TxOutputSpec(alice.pub, 1_000)]
        )
    assert zero.value.code == ErrorCode.MALFORMED_CONTENT

    # arkd counts every OP_RETURN output against max_op_return_outputs (3 by default).
    assert (await backend._server_params()).max_op_return_outputs == 3
    three = [TxOutputSpec(Key().pub, 10) for _ in range(3)]
    await backend.build_offchain_tx([funded], [*three, TxOutputSpec(alice.pub, 970)])
    four = [TxOutputSpec(Key().pub, 10) for _ in range(4)]
    with pytest.raises(ProtocolViolation, match="at most 3 OP_RETURN") as many:
        await backend.build_offchain_tx([funded], [*four, TxOutputSpec(alice.pub, 960)])
    assert many.value.code == ErrorCode.MALFORMED_CONTENT
    assert [v.vtxo_id for v in await backend.list_vtxos(alice.pub)] == [funded.vtxo_id]


def test_arkd_default_min_amount_rules_sub_dust_out() -> None:
    # arkd's default vtxo_min_amount is the dust limit (ARKD_VTXO_MIN_AMOUNT unset).
    ledger = Ledger()
    assert ledger.vtxo_min_amount == ledger.dust == 330
    params = server_params(service_pb2.GetInfoResponse(**ledger.info()))
    owner, bob = Key(), Key()
    tree = default_vtxo_tree(bytes.fromhex(owner.pub), ledger.signer_xonly, 512)
    vtxo = Vtxo(
        vtxo_id="11" * 32 + ":0",
        owner=owner.pub,
        amount=1_000,
        script=tree.pk_script.hex(),
        expires_at=0,
    )
    with pytest.raises(ProtocolViolation, match="minimum") as refused:
        offchain.build(
            params,
            [vtxo],
            [TxOutputSpec(bob.pub, 10), TxOutputSpec(owner.pub, 990)],
            lambda *_: None,
        )
    assert refused.value.code == ErrorCode.MALFORMED_CONTENT


def _outputs_psbt(outputs: Sequence[tuple[bytes, int]]) -> PSBT:
    key = Key()
    tree = default_vtxo_tree(bytes.fromhex(key.pub), bytes.fromhex(Key().pub), 512)
    spend = arktx.VtxoSpend("22" * 32, 0, sum(a for _, a in outputs), tree, tree.leaves[1])
    return arktx.build_offchain_txs([spend], outputs, tree.leaves[0]).ark_tx


@pytest.mark.parametrize(
    ("outputs", "name", "fragment"),
    [
        ([(b"\x6a\x20" + b"\x01" * 32, 330)], "MALFORMED_ARK_TX", ">= dust limit"),
        ([(b"\x6a\x20" + b"\x01" * 32, 5)], "AMOUNT_TOO_LOW", "min vtxo amount: 10"),
        ([(b"\x51\x20" + b"\x01" * 32, 100)], "AMOUNT_TOO_LOW", "not using OP_RETURN"),
        ([(b"\x6a\x04ARK\x00", 0)], "MALFORMED_ARK_TX", "not a sub-dust output"),
        ([(b"\x6a\x20" + bytes([i]) * 32, 10) for i in range(4)], "MALFORMED_ARK_TX", "has 4"),
    ],
)
def test_simulator_checks_outputs_like_arkd(
    outputs: list[tuple[bytes, int]], name: str, fragment: str
) -> None:
    with pytest.raises(ArkdError) as refused:
        rules.check_outputs(
            _outputs_psbt(outputs), dust=330, vtxo_min_amount=10, max_op_return_outputs=3
        )
    assert refused.value.kind.name == name and fragment in refused.value.message


def test_sub_dust_scripts_and_vtxo_outputs() -> None:
    key = bytes(range(32))
    canonical = arktx.sub_dust_script(key)
    assert canonical == b"\x6a\x20" + key
    assert arktx.sub_dust_key(canonical) == key
    # ark-lib's IsSubDustScript takes any push form of the key, and ignores what follows.
    assert arktx.sub_dust_key(b"\x6a\x4c\x20" + key) == key
    assert arktx.sub_dust_key(canonical + b"\x00") == key
    assert arktx.sub_dust_key(b"\x6a\x1f" + key[:31]) is None
    assert arktx.sub_dust_key(b"\x6a\x20" + key[:31]) is None
    assert arktx.sub_dust_key(b"\x51\x20" + key) is None
    ark = _outputs_psbt([(b"\x51\x20" + key, 500), (canonical, 10), (b"\x6a\x4c\x20" + key, 5)])
    # Only 34-byte scripts become VTXOs, each under its P2TR script (as arkd projects them).
    assert [(o.index, o.script, o.amount, o.sub_dust) for o in arktx.vtxo_outputs(ark)] == [
        (0, b"\x51\x20" + key, 500, False),
        (1, b"\x51\x20" + key, 10, True),
    ]


async def test_transactions_stream_carries_sub_dust_vtxos(
    sim: ArkdSimulator, backend: ArkdBackend
) -> None:
    alice, gateway = Key(), Key()
    sim.board(alice.pub, 1_000)
    [funded] = await backend.list_vtxos(alice.pub)
    send, receive = trio.open_memory_channel[ArkEvent](4)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.stream_events, send)
            done = await _transfer(
                backend,
                alice,
                [funded],
                [TxOutputSpec(gateway.pub, 10), TxOutputSpec(alice.pub, 990)],
            )
            event = await receive.receive()
            nursery.cancel_scope.cancel()
    assert (event.kind, event.txid, event.spent) == ("ark_tx", done.ark_txid, (funded.vtxo_id,))
    assert [(v.vtxo_id, v.owner, v.amount, v.status) for v in event.created] == [
        (f"{done.ark_txid}:0", gateway.pub, 10, "swept"),
        (f"{done.ark_txid}:1", alice.pub, 990, "spendable"),
    ]
