"""GetInfo's fee programs and EstimateIntentFee, over real gRPC (sim/intentfee.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from arkrelay_arkd import intentproof
from arkrelay_arkd._proto.ark.v1 import service_pb2, service_pb2_grpc, types_pb2
from arkrelay_arkd.errors import error_info
from arkrelay_arkd.sim import ArkdSimulator, Ledger
from arkrelay_arkd.sim.fees import FeeProgramError, IntentFeePrograms

from .conftest import Key

NOW = 1_770_000_000
PROGRAMS = IntentFeePrograms(
    offchain_input="inputType == 'recoverable' ? 0.0 : amount * 0.001",
    onchain_input="200.0",
    offchain_output="amount * 0.0005",
    onchain_output="double(size(script)) * 2.0",
)
OTHER_SCRIPT = bytes.fromhex("0014" + "ab" * 20)


@pytest.fixture
def priced() -> Iterator[ArkdSimulator]:
    simulator = ArkdSimulator(Ledger(intent_fees=PROGRAMS, clock=lambda: NOW))
    simulator.start(0)
    yield simulator
    simulator.stop()


def _stub(sim: ArkdSimulator) -> service_pb2_grpc.ArkServiceStub:
    return service_pb2_grpc.ArkServiceStub(grpc.insecure_channel(f"127.0.0.1:{sim.port}"))


def _message(**fields: object) -> str:
    return json.dumps({"type": "estimate-intent-fee", **fields})


def _estimate(sim: ArkdSimulator, proof: str, message: str) -> int:
    request = service_pb2.EstimateIntentFeeRequest(
        intent=types_pb2.Intent(proof=proof, message=message)
    )
    return _stub(sim).EstimateIntentFee(request, timeout=5).fee


def test_get_info_reports_the_fee_programs(priced: ArkdSimulator) -> None:
    info = _stub(priced).GetInfo(service_pb2.GetInfoRequest(), timeout=5)
    assert info.fees.intent_fee.offchain_input == PROGRAMS.offchain_input
    assert info.fees.intent_fee.onchain_input == PROGRAMS.onchain_input
    assert info.fees.intent_fee.offchain_output == PROGRAMS.offchain_output
    assert info.fees.intent_fee.onchain_output == PROGRAMS.onchain_output
    assert info.fees.tx_fee_rate == "0"


def test_fees_are_free_by_default(sim: ArkdSimulator) -> None:
    info = _stub(sim).GetInfo(service_pb2.GetInfoRequest(), timeout=5)
    assert info.fees.intent_fee.offchain_input == ""
    owner = Key()
    vtxo = sim.board(owner.pub, 50_000)
    proof = intentproof.new_proof(
        _message(), [(vtxo.txid, vtxo.vout, 0, bytes.fromhex(vtxo.script), vtxo.amount)]
    )
    assert _estimate(sim, proof.to_string(), _message()) == 0


def test_an_intent_is_priced_input_by_input_and_output_by_output(priced: ArkdSimulator) -> None:
    owner = Key()
    vtxo = priced.board(owner.pub, 50_000)
    boarding = ("cd" * 32, 1, 0, OTHER_SCRIPT, 20_000)  # not a VTXO: priced as onchain
    message = _message(onchain_output_indexes=[1])
    proof = intentproof.new_proof(
        message,
        [(vtxo.txid, vtxo.vout, 0, bytes.fromhex(vtxo.script), vtxo.amount), boarding],
        [(bytes.fromhex(vtxo.script), 60_000), (OTHER_SCRIPT, 9_000)],
    )
    # offchain input 50, onchain input 200, offchain output 30, and the onchain output's
    # script is priced by its hex length (44 characters) * 2
    assert _estimate(priced, proof.to_string(), message) == 50 + 200 + 30 + 88


def test_a_fraction_of_a_sat_is_charged_as_a_sat(priced: ArkdSimulator) -> None:
    owner = Key()
    vtxo = priced.board(owner.pub, 1_001)  # 1.001 sats
    proof = intentproof.new_proof(
        _message(), [(vtxo.txid, vtxo.vout, 0, bytes.fromhex(vtxo.script), vtxo.amount)]
    )
    # the single 0-sat OP_RETURN output costs 0
    assert _estimate(priced, proof.to_string(), _message()) == 2


def test_recoverable_vtxos_are_priced_as_recoverable(priced: ArkdSimulator) -> None:
    owner = Key()
    vtxo = priced.board(owner.pub, 50_000)
    priced.ledger._vtxos[vtxo.outpoint].swept = True
    proof = intentproof.new_proof(
        _message(), [(vtxo.txid, vtxo.vout, 0, bytes.fromhex(vtxo.script), vtxo.amount)]
    )
    assert _estimate(priced, proof.to_string(), _message()) == 0


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (_message(expire_at=NOW - 1), "proof of ownership expired"),
        (_message(valid_at=NOW + 60), "proof of ownership not yet valid"),
    ],
)
def test_the_time_range_is_checked(priced: ArkdSimulator, message: str, text: str) -> None:
    vtxo = priced.board(Key().pub, 5_000)
    proof = intentproof.new_proof(
        message, [(vtxo.txid, vtxo.vout, 0, bytes.fromhex(vtxo.script), vtxo.amount)]
    )
    with pytest.raises(grpc.RpcError) as caught:
        _estimate(priced, proof.to_string(), message)
    info = error_info(caught.value)
    assert text in info.message
    assert info.name == "INVALID_INTENT_TIMERANGE"


@pytest.mark.parametrize(
    ("proof", "message", "text"),
    [
        ("", _message(), "missing intent proof"),
        ("bm90IGEgcHNidA==", _message(), "failed to parse intent proof tx"),
        (None, "", "missing message"),
        (None, json.dumps({"type": "register"}), "invalid intent message"),
        (None, json.dumps({"type": "estimate-intent-fee", "valid_at": "soon"}), "invalid intent"),
    ],
)
def test_requests_arkds_handler_refuses_are_refused(
    priced: ArkdSimulator, proof: str | None, message: str, text: str
) -> None:
    if proof is None:
        vtxo = priced.board(Key().pub, 5_000)
        proof = intentproof.new_proof(
            _message(), [(vtxo.txid, vtxo.vout, 0, bytes.fromhex(vtxo.script), vtxo.amount)]
        ).to_string()
    with pytest.raises(grpc.RpcError) as caught:
        _estimate(priced, proof, message)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert text in (caught.value.details() or "")


def test_a_bad_fee_program_is_refused_when_the_simulator_starts() -> None:
    with pytest.raises(FeeProgramError, match="expected return type double"):
        Ledger(intent_fees=IntentFeePrograms(onchain_input="42"))
