"""The checked-in stubs of every pinned daemon are exactly what scripts/gen_protos.py
generates, and arkd's carry arkd's wire names and numbers."""

from __future__ import annotations

import filecmp
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from arkrelay_arkd._proto.ark.v1 import indexer_pb2, service_pb2, types_pb2

REPO = Path(__file__).resolve().parents[3]
PINS = tomllib.loads((REPO / "protos" / "PINS.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("daemon", sorted(PINS))
def test_regenerating_the_stubs_changes_nothing(tmp_path: Path, daemon: str) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_protos.py"), "--out", str(tmp_path), daemon],
        check=True,
        capture_output=True,
    )
    fresh = tmp_path / PINS[daemon]["output"]
    checked_in = REPO / PINS[daemon]["output"]
    assert checked_in.is_dir()
    fresh_files = sorted(p.relative_to(fresh) for p in fresh.rglob("*.py*"))
    checked_files = sorted(
        p.relative_to(checked_in) for p in checked_in.rglob("*.py*") if "__pycache__" not in p.parts
    )
    assert fresh_files == checked_files
    _, mismatch, errors = filecmp.cmpfiles(
        fresh, checked_in, [str(f) for f in fresh_files], shallow=False
    )
    assert (mismatch, errors) == ([], [])


def test_wire_names_and_numbers_are_arkds() -> None:
    def fields(message: object) -> dict[str, int]:
        return {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]

    assert service_pb2.DESCRIPTOR.package == "ark.v1"
    assert [m.name for m in service_pb2.DESCRIPTOR.services_by_name["ArkService"].methods] == [
        "GetInfo",
        "RegisterIntent",
        "EstimateIntentFee",
        "DeleteIntent",
        "ConfirmRegistration",
        "SubmitTreeNonces",
        "SubmitTreeSignatures",
        "SubmitSignedForfeitTxs",
        "GetEventStream",
        "UpdateStreamTopics",
        "SubmitTx",
        "FinalizeTx",
        "GetPendingTx",
        "GetTransactionsStream",
        "GetIntent",
    ]
    assert len(indexer_pb2.DESCRIPTOR.services_by_name["IndexerService"].methods) == 14
    assert fields(types_pb2.TreeNoncesEvent) == {"id": 1, "topic": 2, "txid": 3, "nonces": 4}
    assert fields(service_pb2.GetInfoResponse)["digest"] == 19
    assert fields(service_pb2.GetInfoResponse)["max_op_return_outputs"] == 21
    assert fields(service_pb2.SubmitTxResponse) == {
        "ark_txid": 1,
        "final_ark_tx": 2,
        "signed_checkpoint_txs": 3,
    }
    assert fields(indexer_pb2.GetVtxosRequest)["page"] == 6
    assert fields(indexer_pb2.GetVtxosRequest)["renewable_only"] == 10
    assert fields(indexer_pb2.IndexerVtxo)["depth"] == 15
    assert fields(types_pb2.ErrorDetails) == {"code": 1, "name": 2, "message": 3, "metadata": 4}
