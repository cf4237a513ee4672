"""What a careful wallet checks in a signing challenge before it signs (PROTOCOL.md §3).

Every refusal is an AssertionError: in a test, a challenge the wallet would not sign is a
gateway bug, and the message says which rule it broke.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
from arkrelay_arkd import arktx

from arkrelay_core.nostr import Event, first_tag_value, tag_values
from arkrelay_core.protocol import (
    Challenge,
    Kind,
    SignTxContext,
    challenge_d,
    payload_ref,
    sign_payload_digest,
)

__all__ = ["check_challenge", "sign_tx_digest"]

# The published shape (PROTOCOL.md §3): every challenge a test sees is held to it.
_CHALLENGE_SCHEMA = jsonschema.Draft202012Validator(
    json.loads(
        (Path(__file__).parent.parent / "data/schemas/31511_challenge.schema.json").read_text()
    )
)


def _require(condition: bool, message: str) -> None:
    # Explicit raises, not `assert`: the checks must hold under `python -O` too.
    if not condition:
        raise AssertionError(message)


def check_challenge(
    event: Event, content: dict[str, Any], *, gateway: str, signer: str
) -> Challenge:
    """Return the challenge if a careful wallet holding ``signer`` would sign it."""
    _require(event.kind == Kind.CHALLENGE, f"event {event.id} is kind {event.kind}, not 31511")
    _require(
        event.pubkey == gateway,
        f"challenge {event.id} comes from {event.pubkey}, not the gateway {gateway}",
    )
    problems = [error.message for error in _CHALLENGE_SCHEMA.iter_errors(content)]
    _require(not problems, f"challenge {event.id} violates the 31511 schema: {problems}")
    try:
        challenge = msgspec.convert(content, Challenge)
    except msgspec.ValidationError as exc:
        raise AssertionError(f"challenge {event.id} has malformed content: {exc}") from exc
    where = f"challenge {challenge.session_id} step {challenge.step_index}"
    _require(
        challenge.payload_ref == payload_ref(challenge.payload_to_sign),
        f"{where}: payload_ref {challenge.payload_ref!r} is not sha256:<payload_to_sign>",
    )
    _require(
        challenge.step_index <= challenge.step_total,
        f"{where}: step_index exceeds step_total {challenge.step_total}",
    )
    d_tag = first_tag_value(event, "d")
    expected_d = challenge_d(challenge.session_id, challenge.step_index)
    _require(d_tag == expected_d, f"{where}: d tag {d_tag!r}, expected {expected_d!r}")
    _require(bool(tag_values(event, "e")), f"{where}: no e tag naming the intent")
    if challenge.type == "sign_payload":
        _check_sign_payload(challenge, where)
    else:
        _check_sign_tx(challenge, signer, where)
    return challenge


def _check_sign_payload(challenge: Challenge, where: str) -> None:
    _require("payload" in challenge.context, f"{where}: sign_payload without context.payload")
    digest = sign_payload_digest(challenge.domain, challenge.context["payload"])
    _require(
        digest == challenge.payload_to_sign,
        f"{where}: payload_to_sign {challenge.payload_to_sign} is not the digest {digest} "
        f"of domain {challenge.domain!r} and context.payload",
    )


def sign_tx_digest(psbt_b64: str, input_index: int, signer: str) -> str:
    """The BIP341 tapscript sighash of ``input_index``, once ``signer`` is known to own it."""
    try:
        psbt = arktx.decode_psbt(psbt_b64)
        _require(
            0 <= input_index < len(psbt.inputs),
            f"input_index {input_index} but the PSBT has {len(psbt.inputs)} inputs",
        )
        keys = arktx.signature_keys(psbt, input_index)
        digest = arktx.tapscript_sighash(psbt, input_index).hex()
    # embit reports a truncated PSBT as RuntimeError, which decode_psbt lets through.
    except (arktx.ArkTxError, RuntimeError) as exc:
        raise AssertionError(f"unusable PSBT: {exc}") from exc
    # A leaf that does not need our key would make our signature worthless or, worse, a
    # signature over someone else's input.
    _require(
        bytes.fromhex(signer) in keys,
        f"input {input_index} is spent by keys {[k.hex() for k in keys]}, not ours {signer}",
    )
    return digest


def _check_sign_tx(challenge: Challenge, signer: str, where: str) -> None:
    try:
        context = msgspec.convert(challenge.context, SignTxContext)
    except msgspec.ValidationError as exc:
        raise AssertionError(f"{where}: malformed sign_tx context: {exc}") from exc
    try:
        digest = sign_tx_digest(context.psbt, context.input_index, signer)
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}") from exc
    _require(
        digest == challenge.payload_to_sign,
        f"{where}: payload_to_sign {challenge.payload_to_sign} is not the sighash {digest} "
        f"of input {context.input_index} of the {context.tx_role} PSBT",
    )
