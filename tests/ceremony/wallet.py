"""The reference wallet as the tests use it: every challenge it sees is also held to the
published 31511 schema, and a refusal fails the test unless the test expects it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from arkrelay_wallet import OMIT, CeremonyTimeout, ChallengeRefused, Received, RelayError, Wallet

__all__ = [
    "OMIT",
    "CeremonyTimeout",
    "ChallengeRefused",
    "Received",
    "RelayError",
    "ScriptedWallet",
]

_CHALLENGE_SCHEMA = jsonschema.Draft202012Validator(
    json.loads(
        (Path(__file__).parent.parent / "data/schemas/31511_challenge.schema.json").read_text()
    )
)


class ScriptedWallet(Wallet):
    def inspect(self, challenge: Received) -> None:
        problems = [e.message for e in _CHALLENGE_SCHEMA.iter_errors(challenge.content)]
        if problems:
            raise ChallengeRefused(
                f"challenge {challenge.event.id} violates the 31511 schema: {problems}"
            )
