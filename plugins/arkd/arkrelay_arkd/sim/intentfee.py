"""EstimateIntentFee as arkd v0.9.15 answers it.

The handler (internal/interface/grpc/handlers/arkservice.go, parser.go
``parseEstimateFeeIntent``) parses the proof PSBT and an ``estimate-intent-fee`` message;
the service (internal/core/application/service.go ``EstimateIntentFee``) checks the
message's time range, sorts the proof's inputs into VTXOs (offchain) and anything else
(onchain, priced by their witness utxo) and its outputs into onchain (the message's
``onchain_output_indexes``) and offchain, and prices them with the intent fee programs
(sim/fees.py). The proof's signatures are not checked: an estimate moves nothing.
"""

from __future__ import annotations

import json
from typing import Any

from .. import arktx
from ..intentmessage import ESTIMATE_INTENT_FEE
from ..intentproof import decode_proof
from . import intentcheck
from .errors import code
from .fees import RECOVERABLE, VTXO, FeeProgramError, OffchainInput, OnchainInput, Output
from .ledger import Ledger
from .pendingtx import BadRequest

__all__ = ["EstimateMessage", "decode_message", "estimate_intent_fee"]


class EstimateMessage:
    """ark-lib's EstimateIntentFeeMessage (the RegisterMessage fields)."""

    def __init__(self, onchain_output_indexes: list[int], valid_at: int, expire_at: int) -> None:
        self.onchain_output_indexes = onchain_output_indexes
        self.valid_at = valid_at
        self.expire_at = expire_at


def decode_message(text: str) -> EstimateMessage:
    """Read ``text`` as Go's encoding/json reads it into the message (keys matched
    case-insensitively, unknown keys ignored, null leaving a field zero); the type must be
    ``estimate-intent-fee``. Any failure is arkd's "invalid intent message"."""
    try:
        doc = json.loads(text, object_pairs_hook=list)
    except ValueError as exc:
        raise BadRequest("invalid intent message") from exc
    if not isinstance(doc, list):
        raise BadRequest("invalid intent message")
    fields: dict[str, Any] = {}
    for key, value in doc:
        if value is not None:
            fields[key.casefold()] = value
    kind = fields.get("type", "")
    indexes = fields.get("onchain_output_indexes", [])
    valid_at, expire_at = fields.get("valid_at", 0), fields.get("expire_at", 0)
    if (
        not isinstance(kind, str)
        or not isinstance(indexes, list)
        or not all(_is_int(i) for i in indexes)
        or not _is_int(valid_at)
        or not _is_int(expire_at)
        or kind != ESTIMATE_INTENT_FEE
    ):
        raise BadRequest("invalid intent message")
    return EstimateMessage(list(indexes), valid_at, expire_at)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def estimate_intent_fee(ledger: Ledger, request: Any) -> int:
    if not request.HasField("intent"):
        raise BadRequest("missing intent")
    intent = request.intent
    if not intent.proof:
        raise BadRequest("missing intent proof")
    try:
        proof = decode_proof(intent.proof)
    except arktx.ArkTxError as exc:
        if intentcheck.declares_no_inputs(intent.proof):
            proof = None  # btcd parses it; it proves no inputs, refused below
        else:
            raise BadRequest(f"failed to parse intent proof tx: {exc}") from exc
    if not intent.message:
        raise BadRequest("missing message")
    message = decode_message(intent.message)

    now = int(ledger.clock())
    window = {
        "valid_at": str(message.valid_at),
        "expire_at": str(message.expire_at),
        "now": str(now),
    }
    if message.valid_at > 0 and now < message.valid_at:
        raise code.INVALID_INTENT_TIMERANGE("proof of ownership not yet valid", **window)
    if message.expire_at > 0 and now > message.expire_at:
        raise code.INVALID_INTENT_TIMERANGE("proof of ownership expired", **window)
    if proof is None or len(proof.inputs) < 2:
        txid = arktx.txid(proof) if proof is not None else ""
        raise code.INVALID_INTENT_PSBT("proof misses inputs", tx=txid)

    offchain: list[OffchainInput] = []
    onchain: list[OnchainInput] = []
    for i in range(1, len(proof.inputs)):
        witness_utxo = proof.inputs[i].witness_utxo
        if witness_utxo is None:
            continue  # arkd skips an input it cannot price
        outpoint = arktx.input_outpoint(proof, i)
        found = ledger.get_vtxos(outpoints=[outpoint])
        if not found:
            onchain.append(OnchainInput(witness_utxo.value))
            continue
        vtxo = found[0]
        offchain.append(
            OffchainInput(
                amount=vtxo.amount,
                expiry=vtxo.expires_at,
                birth=vtxo.created_at,
                input_type=RECOVERABLE if vtxo.swept else VTXO,
            )
        )
    offchain_outputs: list[Output] = []
    onchain_outputs: list[Output] = []
    for index, out in enumerate(proof.tx.vout):
        priced = Output(out.value, out.script_pubkey.data.hex())
        if index in message.onchain_output_indexes:
            onchain_outputs.append(priced)
        else:
            offchain_outputs.append(priced)
    try:
        return ledger.intent_fee(offchain, onchain, offchain_outputs, onchain_outputs)
    except FeeProgramError as exc:
        raise code.INTERNAL_ERROR(f"failed to evaluate fees: {exc}") from exc
