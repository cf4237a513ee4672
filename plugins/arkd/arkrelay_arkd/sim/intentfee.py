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

from typing import Any

from .. import arktx
from ..intentmessage import ESTIMATE_INTENT_FEE, RegisterMessage
from .errors import code
from .fees import RECOVERABLE, VTXO, FeeProgramError, OffchainInput, OnchainInput, Output
from .intentparse import parse_intent
from .ledger import Ledger

__all__ = ["estimate_intent_fee"]


def estimate_intent_fee(ledger: Ledger, request: Any) -> int:
    proof, message = parse_intent(
        request.intent if request.HasField("intent") else None,
        ESTIMATE_INTENT_FEE,
        "invalid intent message",
    )
    assert isinstance(message, RegisterMessage)
    onchain_indexes = set(message.onchain_output_indexes or ())

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
        if index in onchain_indexes:
            onchain_outputs.append(priced)
        else:
            offchain_outputs.append(priced)
    try:
        return ledger.intent_fee(offchain, onchain, offchain_outputs, onchain_outputs)
    except FeeProgramError as exc:
        raise code.INTERNAL_ERROR(f"failed to evaluate fees: {exc}") from exc
