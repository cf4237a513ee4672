"""The simulator's defaults are arkd v0.9.15's (sim/defaults.py, docs/simulators.md).

Values as arkd's GetInfo reports them with no ARKD_* setting: internal/config/config.go's
defaults, each delay read as arkd reads it (seconds rounded down to a multiple of 512),
the -1 amounts resolved against arkd-wallet's dust limit.
"""

from __future__ import annotations

import grpc
import pytest

from arkrelay_arkd._proto.ark.v1 import service_pb2, service_pb2_grpc
from arkrelay_arkd.closures import RelativeLocktime, decode_closure
from arkrelay_arkd.settings import SimulatorSettings
from arkrelay_arkd.sim import ArkdSimulator, Ledger


def test_get_info_reports_arkds_defaults(sim: ArkdSimulator) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{sim.port}")
    info = service_pb2_grpc.ArkServiceStub(channel).GetInfo(service_pb2.GetInfoRequest(), timeout=5)
    channel.close()
    assert info.unilateral_exit_delay == 86_016  # ARKD_UNILATERAL_EXIT_DELAY=86400
    assert info.boarding_exit_delay == 7_775_744  # ARKD_BOARDING_EXIT_DELAY=7776000
    assert info.dust == 330
    assert (info.vtxo_min_amount, info.vtxo_max_amount) == (330, -1)
    assert (info.utxo_min_amount, info.utxo_max_amount) == (330, -1)
    assert info.max_tx_weight == 40_000
    assert info.max_op_return_outputs == 3
    checkpoint = decode_closure(bytes.fromhex(info.checkpoint_tapscript))
    assert checkpoint.locktime == RelativeLocktime(86_016)  # ARKD_CHECKPOINT_EXIT_DELAY
    assert checkpoint.multisig.keys == (bytes.fromhex(info.forfeit_pubkey)[1:],)


def test_vtxos_live_as_long_as_arkds_tree_expiry() -> None:
    ledger = Ledger(clock=lambda: 1_000_000)
    vtxo = ledger.board(bytes.fromhex("11" * 31 + "12"), 1_000)
    assert vtxo.expires_at - vtxo.created_at == 604_672  # ARKD_VTXO_TREE_EXPIRY


def test_the_in_process_simulator_settings_default_to_arkds() -> None:
    settings = SimulatorSettings()
    assert settings.unilateral_exit_delay == 86_400
    assert settings.vtxo_lifetime.seconds == 604_672
    assert settings.vtxo_min_amount == -1
    assert settings.intent_fees.offchain_input == ""


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"vtxo_min_amount": 0}, "vtxo min amount must be greater than 0"),
        ({"unilateral_exit_delay": 144}, "type mismatch"),
        ({"boarding_exit_delay": 86_400}, "must be different"),
        ({"vtxo_max_amount": 100}, "vtxo max amount must be greater than or equal"),
    ],
)
def test_settings_arkd_refuses_are_refused(overrides: dict[str, int], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Ledger(**overrides)  # type: ignore[arg-type]


def test_block_delays_go_together_as_in_arkd() -> None:
    ledger = Ledger(
        unilateral_exit_delay=144,
        boarding_exit_delay=288,
        checkpoint_exit_delay=10,
        vtxo_lifetime=20,
    )
    assert ledger.info()["unilateral_exit_delay"] == 144
    assert ledger.block_type_allowed
    assert not Ledger().block_type_allowed
