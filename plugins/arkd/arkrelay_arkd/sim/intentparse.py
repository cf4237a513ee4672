"""arkd's handler-side parsing of an ``Intent {proof, message}`` request field.

Every intent RPC's handler (internal/interface/grpc/handlers/parser.go at v0.9.15:
``parseIntentProofTx`` and the ``parse<Kind>Intent`` functions) refuses, in this order, a
missing intent, an empty proof, a proof that is not a PSBT, an empty message, and a message
that does not decode as its kind, each with a bare INVALID_ARGUMENT and its own text.
"""

from __future__ import annotations

from typing import Any

from .. import arktx, intentmessage
from ..intentproof import ProofPSBT, decode_proof
from . import intentcheck
from .pendingtx import BadRequest

__all__ = ["parse_intent"]


def parse_intent(
    intent: Any, kind: str, refusal: str
) -> tuple[ProofPSBT | None, intentmessage.RegisterMessage | intentmessage.ExpiryMessage]:
    """(the proof, the message) of an ``ark.v1.Intent`` (None when absent); raises
    BadRequest with arkd's text. The proof is None when it is a PSBT with no inputs, which
    btcd parses and embit cannot (the service then refuses it for what it lacks)."""
    if intent is None:
        raise BadRequest("missing intent")
    if not intent.proof:
        raise BadRequest("missing intent proof")
    try:
        proof: ProofPSBT | None = decode_proof(intent.proof)
    except arktx.ArkTxError as exc:
        if not intentcheck.declares_no_inputs(intent.proof):
            raise BadRequest(f"failed to parse intent proof tx: {exc}") from exc
        proof = None
    if not intent.message:
        raise BadRequest("missing message")
    try:
        message = intentmessage.decode(intent.message, kind)
    except ValueError as exc:
        raise BadRequest(refusal) from exc
    return proof, message
