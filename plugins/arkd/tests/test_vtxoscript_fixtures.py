"""VTXO scripts against arkd's own vectors.

Copied unchanged from arkade-os/arkd at tag v0.9.15 (f444de6c336c024f5b03e646feb781eec9a24c00):

  pkg/ark-lib/script/testdata/vtxoscript.json -> data/arkd-v0.9.15/script_vtxoscript.json

arkd's script_test.go (TestTapscriptsVtxoScript) decodes each fixture's leaves, validates
them against the server key and smallest exit delay, and re-encodes them; these tests do the
same with the plugin's closures module, check the taproot output key with its tree
assembly, and check that the simulator's SubmitTx rule (rules.check_vtxo_script) accepts
them. Then one rule at a time is broken to show a fixture notices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from arkrelay_arkd import closures
from arkrelay_arkd.closures import ClosureError, RelativeLocktime
from arkrelay_arkd.sim import rules
from arkrelay_arkd.sim.errors import ArkdError
from arkrelay_arkd.tapscript import TapTree

DATA = Path(__file__).parent / "data" / "arkd-v0.9.15"
FIXTURES: list[dict[str, Any]] = json.loads((DATA / "script_vtxoscript.json").read_text())
KEY = "e106ad991696429bfdd602890800d275937b3b3858024774efc21fb5e8b75c30"


def _min_exit(fixture: dict[str, Any]) -> RelativeLocktime:
    # ark-lib's RelativeLocktime JSON: type 0 is seconds, 1 is blocks.
    delay = fixture["smallestExitDelay"]
    return RelativeLocktime(delay["value"], blocks=delay["type"] == 1)


def _signer(fixture: dict[str, Any]) -> bytes:
    return bytes.fromhex(fixture["serverKey"])[1:]


def _check(fixture: dict[str, Any]) -> None:
    scripts = [bytes.fromhex(s) for s in fixture["scripts"]]
    decoded = closures.decode_vtxo_script(scripts)
    closures.validate_vtxo_script(decoded, _signer(fixture), _min_exit(fixture))
    assert [c.script() for c in decoded] == scripts
    assert closures.smallest_exit_delay(decoded) == _min_exit(fixture)
    assert TapTree.from_leaves(scripts).output_key.hex() == fixture["taprootKey"]


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f["name"])
def test_arkds_vtxo_scripts_decode_validate_and_reencode(fixture: dict[str, Any]) -> None:
    _check(fixture)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f["name"])
def test_the_simulator_accepts_arkds_vtxo_scripts(fixture: dict[str, Any]) -> None:
    scripts = [bytes.fromhex(s) for s in fixture["scripts"]]
    rules.check_vtxo_script(scripts, _min_exit(fixture), _signer(fixture))


def test_every_closure_kind_is_met() -> None:
    kinds = {
        type(closures.decode_closure(bytes.fromhex(s))).__name__
        for f in FIXTURES
        for s in f["scripts"]
    }
    assert kinds == {"Multisig", "CSVMultisig", "ConditionMultisig", "ConditionCSVMultisig"}


def test_the_simulator_refuses_a_forfeit_leaf_without_its_key() -> None:
    fixture = FIXTURES[0]
    scripts = [bytes.fromhex(s) for s in fixture["scripts"]]
    with pytest.raises(ArkdError, match="signer pubkey not found") as caught:
        rules.check_vtxo_script(scripts, _min_exit(fixture), bytes(range(1, 33)))
    assert caught.value.kind.name == "INVALID_VTXO_SCRIPT"


def test_the_simulator_refuses_an_exit_shorter_than_its_minimum() -> None:
    fixture = FIXTURES[0]
    scripts = [bytes.fromhex(s) for s in fixture["scripts"]]
    with pytest.raises(ArkdError, match="exit delay is too short"):
        rules.check_vtxo_script(scripts, RelativeLocktime(1024), _signer(fixture))


def test_closures_round_trip_in_every_form() -> None:
    k1 = bytes.fromhex(FIXTURES[0]["serverKey"])[1:]
    k2 = bytes.fromhex(FIXTURES[1]["scripts"][0][2:66])
    forms = [
        closures.Multisig((k1, k2), checksigadd=True),
        closures.CLTVMultisig(800_000, closures.Multisig((k1,))),
        closures.CLTVMultisig(7, closures.Multisig((k1, k2))),
        closures.CSVMultisig(RelativeLocktime(144, blocks=True), closures.Multisig((k2,))),
    ]
    for closure in forms:
        assert closures.decode_closure(closure.script()) == closure


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("", "empty script"),
        ("50", "OP_SUCCESS"),
        ("51", "does not match any known closure"),
        # CSV of 1 pushed as a data byte instead of OP_1: not minimal, not re-encodable.
        ("0101b275" + "20" + KEY + "ac", "does not match any known closure"),
        ("20" + "11" * 32 + "ac", "invalid x-only key"),
    ],
)
def test_scripts_ark_lib_refuses_are_refused(script: str, reason: str) -> None:
    with pytest.raises(ClosureError, match=reason):
        closures.decode_closure(bytes.fromhex(script))


# ------------------------------------------------------------------ the fixtures bite


def _outcomes() -> list[bool]:
    results = []
    for fixture in FIXTURES:
        try:
            _check(fixture)
        except (ClosureError, AssertionError):
            results.append(False)
        else:
            results.append(True)
    return results


MUTATIONS = {
    # A decoder that forgets the condition closures.
    "no condition closures": lambda mp: mp.setattr(closures, "_split_condition", lambda s: None),
    # Blocks read as seconds: the block-delay fixture's exit delay changes kind.
    "CSV blocks read as seconds": lambda mp: mp.setattr(
        RelativeLocktime,
        "from_sequence",
        classmethod(lambda cls, seq: cls(seq & 0xFFFF)),
    ),
    # Exit leaves overlooked: the smallest exit delay is lost.
    "exit leaves ignored": lambda mp: mp.setattr(closures, "exit_closures", lambda cs: []),
}


def test_the_fixtures_pass_as_written() -> None:
    assert all(_outcomes())


@pytest.mark.parametrize("mutation", MUTATIONS, ids=str)
def test_breaking_a_rule_makes_a_fixture_fail(
    mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    MUTATIONS[mutation](monkeypatch)
    assert not all(_outcomes()), f"no fixture notices: {mutation}"
