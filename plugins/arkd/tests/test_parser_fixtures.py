"""The simulator's intent request parsing against arkd's handler fixtures.

Copied unchanged from arkade-os/arkd at tag v0.9.15 (f444de6c336c024f5b03e646feb781eec9a24c00):

  internal/interface/grpc/handlers/testdata/parser_fixtures.json
    -> data/arkd-v0.9.15/handlers_parser_fixtures.json

arkd's parser_test.go runs its handlers' ``parseGetIntent`` and ``parseDeleteIntent`` over
them. The simulator parses every intent request with one function (sim/intentparse.py,
used by EstimateIntentFee; the batch RPCs GetIntent and DeleteIntent parse the same way),
so these tests run it with each fixture's message kind and refusal text, then break one
rule at a time to show a fixture notices.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from arkrelay_arkd import intentmessage
from arkrelay_arkd._proto.ark.v1 import types_pb2
from arkrelay_arkd.sim import intentparse
from arkrelay_arkd.sim.pendingtx import BadRequest

DATA = Path(__file__).parent / "data" / "arkd-v0.9.15"
FIXTURES: dict[str, Any] = json.loads((DATA / "handlers_parser_fixtures.json").read_text())
# (fixture section, message kind, the handler's refusal of a message of another kind)
KINDS = {
    "parse_get_intent": (intentmessage.GET_INTENT, "invalid get-intent message"),
    "parse_delete_intent": (intentmessage.DELETE, "invalid delete intent message"),
}
VALID = [(s, f) for s in KINDS for f in FIXTURES[s]["valid"]]
INVALID = [(s, f) for s in KINDS for f in FIXTURES[s]["invalid"]]


def _ids(cases: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [f"{section}/{fixture['name']}" for section, fixture in cases]


def _intent(fixture: dict[str, Any]) -> types_pb2.Intent | None:
    proof = fixture.get("proof", FIXTURES["valid_proof"])
    if proof is None and fixture.get("message") is None:
        return None  # the request carries no intent at all
    if proof == "USE_VALID_PROOF":
        proof = FIXTURES["valid_proof"]
    return types_pb2.Intent(proof=proof or "", message=fixture.get("message") or "")


def _parse(section: str, fixture: dict[str, Any]) -> Any:
    kind, refusal = KINDS[section]
    return intentparse.parse_intent(_intent(fixture), kind, refusal)


def _valid_outcome(section: str, fixture: dict[str, Any]) -> bool:
    try:
        _, message = _parse(section, fixture)
    except BadRequest:
        return False
    return (message.type, message.expire_at) == (
        fixture["expected_type"],
        fixture["expected_expire_at"],
    )


def _invalid_outcome(section: str, fixture: dict[str, Any]) -> bool:
    try:
        _parse(section, fixture)
    except BadRequest as exc:
        return fixture["expected_error"] in str(exc)
    return False


@pytest.mark.parametrize(("section", "fixture"), VALID, ids=_ids(VALID))
def test_valid_requests_parse(section: str, fixture: dict[str, Any]) -> None:
    assert _valid_outcome(section, fixture)


@pytest.mark.parametrize(("section", "fixture"), INVALID, ids=_ids(INVALID))
def test_invalid_requests_are_refused_with_arkds_text(
    section: str, fixture: dict[str, Any]
) -> None:
    assert _invalid_outcome(section, fixture)


def _outcomes() -> list[bool]:
    return [_valid_outcome(s, f) for s, f in VALID] + [_invalid_outcome(s, f) for s, f in INVALID]


MUTATIONS = {
    # The message's type not checked against the RPC's kind.
    "any message type accepted": lambda mp: mp.setattr(
        intentmessage, "decode", lambda text, kind=None, real=intentmessage.decode: real(text)
    ),
    # The proof taken on trust instead of parsed.
    "proof not parsed": lambda mp: mp.setattr(intentparse, "decode_proof", lambda b64: None),
}


def test_the_fixtures_pass_as_written() -> None:
    assert all(_outcomes())


@pytest.mark.parametrize("mutation", MUTATIONS, ids=str)
def test_breaking_a_parsing_rule_makes_a_fixture_fail(
    mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    MUTATIONS[mutation](monkeypatch)
    assert not all(_outcomes()), f"no fixture notices: {mutation}"
