"""GetPendingTx as arkd v0.9.15 answers it (docs/simulators.md, "Ownership proofs").

The handler (internal/interface/grpc/handlers/arkservice.go, parser.go) refuses a request
it cannot parse with a bare INVALID_ARGUMENT; the service (internal/core/application/
service.go, GetPendingOffchainTxs) then checks the expiry, looks up which proven VTXOs a
submitted-but-unfinalized ark tx spends, checks those inputs' witness utxos against the
VTXOs, and only then verifies the proof. Proving VTXOs with nothing pending answers an
empty list without verifying anything, as arkd does: it reveals no more than the indexer's
public ``pending_only`` query already does.
"""

from __future__ import annotations

from typing import Any

from .. import arktx
from ..intentproof import decode_proof
from . import intentcheck
from .errors import code
from .ledger import Ledger, PendingAnswer

__all__ = ["BadRequest", "get_pending_txs"]


class BadRequest(ValueError):
    """Refused by arkd's handler: a plain INVALID_ARGUMENT status, no ErrorDetails."""


def get_pending_txs(ledger: Ledger, request: Any) -> list[PendingAnswer]:
    if request.WhichOneof("identifier") is None:
        raise BadRequest("missing identifier")
    intent = request.intent
    if not intent.proof:
        raise BadRequest("missing intent proof")
    try:
        proof = decode_proof(intent.proof)
    except arktx.ArkTxError as exc:
        if intentcheck.declares_no_inputs(intent.proof):
            proof = None  # btcd parses it: no inputs, so nothing proven, nothing pending
        else:
            raise BadRequest(f"failed to parse intent proof tx: {exc}") from exc
    if not intent.message:
        raise BadRequest("missing message")
    try:
        expire_at = intentcheck.decode_get_pending_tx(intent.message)
    except intentcheck.ProofRefused as exc:
        raise BadRequest(str(exc)) from exc

    now = ledger.clock()
    if expire_at > 0 and now > expire_at:
        raise code.INVALID_INTENT_TIMERANGE(
            "proof of ownership expired", valid_at="0", expire_at=str(expire_at), now=str(int(now))
        )
    if proof is None or len(proof.inputs) < 2:
        return []
    outpoints = [arktx.input_outpoint(proof, i) for i in range(1, len(proof.inputs))]
    pending = ledger.pending_spent(outpoints)
    if not pending:
        return []
    by_outpoint = {vtxo.outpoint: vtxo for vtxo, _ in pending}
    proof_txid = arktx.txid(proof)
    for i, outpoint in enumerate(outpoints, start=1):
        inp = proof.inputs[i]
        where = {"txid": proof_txid, "input_index": str(i)}
        if not inp.taproot_scripts:
            raise code.INVALID_PSBT_INPUT(f"missing taproot leaf script on input {i}", **where)
        vtxo = by_outpoint.get(outpoint)
        if vtxo is None:
            continue
        if inp.witness_utxo is None:
            # arkd dereferences the missing witness utxo here; refuse instead of crashing.
            raise code.INVALID_PSBT_INPUT(f"missing witness utxo on input {i}", **where)
        if inp.witness_utxo.value != vtxo.amount:
            raise code.INVALID_PSBT_INPUT(
                f"invalid witness utxo value: got {inp.witness_utxo.value} expected {vtxo.amount}",
                **where,
            )
        script = inp.witness_utxo.script_pubkey.data
        if script.hex() != vtxo.script:
            raise code.INVALID_PSBT_INPUT(
                f"invalid witness utxo script: got {script.hex()} expected {vtxo.script}", **where
            )

    message = intentcheck.encode_get_pending_tx(expire_at)
    try:
        intentcheck.verify(intent.proof, message, [ledger.signer_xonly])
    except intentcheck.ProofRefused as exc:
        raise code.INVALID_INTENT_PROOF(
            f"invalid intent proof: {exc}", proof=intent.proof, message=message
        ) from exc

    answers: dict[str, PendingAnswer] = {}
    for _, answer in pending:
        answers.setdefault(answer.ark_txid, answer)
    return list(answers.values())
