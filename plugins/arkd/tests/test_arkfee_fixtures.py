"""The simulator's intent-fee evaluator against arkd's own fee fixtures.

Copied unchanged from arkade-os/arkd at tag v0.9.15 (f444de6c336c024f5b03e646feb781eec9a24c00):

  pkg/ark-lib/arkfee/testdata/valid.json   -> data/arkd-v0.9.15/arkfee_valid.json
  pkg/ark-lib/arkfee/testdata/invalid.json -> data/arkd-v0.9.15/arkfee_invalid.json

arkd's estimator_test.go builds an Estimator from each fixture's program(s) and checks
every case's fee (exactly, as a float) or, for the invalid ones, that building fails with
the fixture's text. These tests do the same with arkrelay_arkd.sim.fees, then change one
rule of the evaluator at a time to show a fixture notices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from arkrelay_arkd.sim import fees
from arkrelay_arkd.sim.fees import (
    FeeEstimator,
    FeeProgramError,
    IntentFeePrograms,
    OffchainInput,
    OnchainInput,
    Output,
)

DATA = Path(__file__).parent / "data" / "arkd-v0.9.15"
VALID: dict[str, list[dict[str, Any]]] = json.loads((DATA / "arkfee_valid.json").read_text())
INVALID: list[dict[str, Any]] = json.loads((DATA / "arkfee_invalid.json").read_text())[
    "invalidConfigs"
]
NOW = 1_770_000_000


def _clock() -> float:
    return NOW + 0.75  # now() must drop the fraction, as Go's time.Now().Unix() does


def _offchain(j: dict[str, Any]) -> OffchainInput:
    # As the Go test's convertJSONInput: offsets from now, absent ones left unset.
    expiry = j.get("expiryOffsetSeconds")
    birth = j.get("birthOffsetSeconds")
    return OffchainInput(
        amount=j.get("amount", 0),
        expiry=None if expiry is None else NOW + expiry,
        birth=None if birth is None else NOW + birth,
        input_type=j.get("type", ""),
        weight=j.get("weight", 0.0),
    )


def _onchain(j: dict[str, Any]) -> OnchainInput:
    return OnchainInput(j.get("amount", 0))


def _output(j: dict[str, Any]) -> Output:
    return Output(j.get("amount", 0), j.get("script", ""))


def _estimator(**programs: str) -> FeeEstimator:
    return FeeEstimator(IntentFeePrograms(**programs), clock=_clock)


# (fixture section, program field, case field, converter, estimator method)
SINGLE = [
    ("evalOffchainInput", "offchain_input", "input", _offchain, FeeEstimator.offchain_input),
    ("evalOnchainInput", "onchain_input", "input", _onchain, FeeEstimator.onchain_input),
    ("evalOffchainOutput", "offchain_output", "output", _output, FeeEstimator.offchain_output),
    ("evalOnchainOutput", "onchain_output", "output", _output, FeeEstimator.onchain_output),
]
SINGLE_CASES = [
    pytest.param(
        section, field, key, convert, method, fixture, case, id=f"{section}/{case['name']}"
    )
    for section, field, key, convert, method in SINGLE
    for fixture in VALID[section]
    for case in fixture["cases"]
]


def _single_outcome(section, field, key, convert, method, fixture, case) -> bool:  # type: ignore[no-untyped-def]
    estimator = _estimator(**{field: fixture["program"]})
    try:
        return method(estimator, convert(case[key])) == case["expected"]
    except FeeProgramError:
        return False


def _total_outcome(fixture: dict[str, Any], case: dict[str, Any]) -> bool:
    estimator = _estimator(
        offchain_input=fixture.get("offchainInputProgram", ""),
        onchain_input=fixture.get("onchainInputProgram", ""),
        offchain_output=fixture.get("offchainOutputProgram", ""),
        onchain_output=fixture.get("onchainOutputProgram", ""),
    )
    try:
        total = estimator.total(
            [_offchain(j) for j in case.get("offchainInputs", [])],
            [_onchain(j) for j in case.get("onchainInputs", [])],
            [_output(j) for j in case.get("offchainOutputs", [])],
            [_output(j) for j in case.get("onchainOutputs", [])],
        )
    except FeeProgramError:
        return False
    return total == case["expected"]


def _invalid_outcome(fixture: dict[str, Any]) -> bool:
    config = fixture["config"]
    try:
        _estimator(
            offchain_input=config.get("offchainInputProgram", ""),
            onchain_input=config.get("onchainInputProgram", ""),
            offchain_output=config.get("offchainOutputProgram", ""),
            onchain_output=config.get("onchainOutputProgram", ""),
        )
    except FeeProgramError as exc:
        return fixture["err"] in str(exc)
    return False


@pytest.mark.parametrize(
    ("section", "field", "key", "convert", "method", "fixture", "case"), SINGLE_CASES
)
def test_each_program_prices_arkds_cases(section, field, key, convert, method, fixture, case):  # type: ignore[no-untyped-def]
    estimator = _estimator(**{field: fixture["program"]})
    assert method(estimator, convert(case[key])) == case["expected"]


def test_a_program_reading_an_unset_variable_fails_on_evaluation() -> None:
    estimator = _estimator(offchain_input="expiry - now()")
    with pytest.raises(FeeProgramError, match="expiry"):
        estimator.offchain_input(OffchainInput(1000, input_type="recoverable"))


@pytest.mark.parametrize(
    ("fixture", "case"),
    [(f, c) for f in VALID["eval"] for c in f["cases"]],
    ids=lambda x: x.get("name", ""),
)
def test_the_total_sums_every_input_and_output(
    fixture: dict[str, Any], case: dict[str, Any]
) -> None:
    assert _total_outcome(fixture, case)


@pytest.mark.parametrize("fixture", INVALID, ids=lambda f: f["name"])
def test_programs_arkd_refuses_are_refused_with_its_text(fixture: dict[str, Any]) -> None:
    assert _invalid_outcome(fixture)


def test_no_program_is_free() -> None:
    estimator = _estimator()
    assert estimator.total([OffchainInput(10_000)], [OnchainInput(5)], [Output(1)]) == 0.0


def test_fees_round_up_to_whole_sats() -> None:
    assert fees.to_satoshis(56.3) == 57
    assert fees.to_satoshis(100.0) == 100


# ------------------------------------------------------------------ the fixtures bite


def _outcomes() -> list[bool]:
    results = [_single_outcome(*p.values) for p in SINGLE_CASES]
    results += [_total_outcome(f, c) for f in VALID["eval"] for c in f["cases"]]
    results += [_invalid_outcome(f) for f in INVALID]
    return results


def _no_type_check(monkeypatch: pytest.MonkeyPatch) -> None:
    original = fees._Program.__init__

    def lenient(self, env, text, what):  # type: ignore[no-untyped-def]
        try:
            original(self, env, text, what)
        except FeeProgramError as exc:
            if "expected return type" not in str(exc):
                raise
            self._expr = env.compile(text)

    monkeypatch.setattr(fees._Program, "__init__", lenient)


MUTATIONS = {
    # now() an hour late: the "free if it expires within 5 minutes" rule flips.
    "now() an hour late": lambda mp: mp.setattr(
        FeeEstimator, "_now", lambda self: float(int(self._clock())) + 3600
    ),
    # The liquidity weight ignored (taken as 1).
    "weight ignored": lambda mp: mp.setattr(
        OffchainInput,
        "activation",
        lambda self, real=OffchainInput.activation: {**real(self), "weight": 1.0},
    ),
    "return type unchecked": _no_type_check,
    "onchain outputs priced as offchain": lambda mp: mp.setattr(
        FeeEstimator, "onchain_output", FeeEstimator.offchain_output
    ),
}


def test_the_fixtures_pass_as_written() -> None:
    assert all(_outcomes())


@pytest.mark.parametrize("mutation", MUTATIONS, ids=str)
def test_changing_a_fee_rule_makes_a_fixture_fail(
    mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    MUTATIONS[mutation](monkeypatch)
    assert not all(_outcomes()), f"no fixture notices: {mutation}"
