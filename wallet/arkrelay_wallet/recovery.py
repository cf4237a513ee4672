"""Finishing a spend the gateway left half done, without the gateway.

After SubmitTx arkd holds the wallet's VTXOs as spent by an ark tx that only FinalizeTx,
with the owner's checkpoint signatures, completes. If the gateway disappears in between,
the wallet finishes it alone against arkd: with SubmitTx's answer if it holds it (the
checkpoint challenges carry it), otherwise by proving ownership of its spent VTXOs to
arkd's GetPendingTx, which gives that answer back (docs/simulators.md, "Ownership proofs").

The wallet signs only what it can check itself: the ownership proof is rebuilt from the
message and its own VTXOs before any signature, and a pending tx is finalized only if its
ark tx carries the wallet's own valid signature on every input it spends of the wallet's
(so finalizing completes a spend the wallet approved, nothing else).

The Ark server is reached through anything with the few calls of ``ArkServer``: the arkd
plugin's gRPC backend (``ArkdBackend``), or arkd's REST interface (``restark.
ArkServerRest``) when the wallet knows only the server's URL; the checks are the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from arkrelay_arkd import arktx, intentproof

from arkrelay_core.interfaces import (
    FinalizedTx,
    InputSignature,
    OwnershipProof,
    SubmittedTx,
    Vtxo,
)
from arkrelay_core.nostr import bip340
from arkrelay_core.protocol import PendingArkTx

from .checks import ChallengeRefused
from .restark import ArkServerRest

__all__ = [
    "ArkServer",
    "check_ownership_proof",
    "finalize_handed_over",
    "finalize_pending",
    "finalize_submitted",
]

log = logging.getLogger(__name__)

#: How long a proof may be replayed against arkd; it only has to live for one call.
PROOF_LIFETIME = 60


class ArkServer(Protocol):
    """The Ark server calls finishing a spend takes (a subset of ``ArkBackend``)."""

    async def list_vtxos(self, owner: str, *, spendable_only: bool = True) -> list[Vtxo]: ...

    async def build_ownership_proof(
        self, vtxos: Sequence[Vtxo], *, expire_at: int
    ) -> OwnershipProof: ...

    def add_proof_signatures(
        self, proof: OwnershipProof, signatures: Sequence[InputSignature]
    ) -> str: ...

    async def get_pending_txs(self, proof: str, message: str) -> list[SubmittedTx]: ...

    def add_signatures(self, psbt: str, signatures: Sequence[InputSignature]) -> str: ...

    async def finalize_tx(
        self, ark_txid: str, final_checkpoint_txs: Sequence[str]
    ) -> FinalizedTx: ...


async def finalize_pending(
    ark: ArkServer,
    secret: bytes,
    *,
    held: Sequence[SubmittedTx] = (),
    clock: Callable[[], float] = time.time,
) -> list[FinalizedTx]:
    """Finalize every submitted, unfinalized spend of this wallet's VTXOs that only this
    wallet's signatures are missing from. ``held``: SubmitTx answers the wallet kept."""
    owner = bip340.xonly_public_key(secret).hex()
    done = [await finalize_submitted(ark, secret, s) for s in held]
    finished = {d.ark_txid for d in done}
    spent = [
        v
        for v in await ark.list_vtxos(owner, spendable_only=False)
        if v.status == "spent" and v.ark_txid and v.ark_txid not in finished
    ]
    if not spent:
        return done
    proof = await ark.build_ownership_proof(spent, expire_at=int(clock()) + PROOF_LIFETIME)
    check_ownership_proof(proof, spent, owner)
    signed = ark.add_proof_signatures(
        proof,
        [
            InputSignature(
                t.input_index, owner, bip340.schnorr_sign(secret, bytes.fromhex(t.sighash)).hex()
            )
            for t in proof.to_sign
        ],
    )
    for pending in await ark.get_pending_txs(signed, proof.message):
        if pending.ark_txid in finished:
            continue
        if any(t.owner != owner for t in pending.to_sign):
            log.info("pending tx %s also needs other owners' signatures; left", pending.ark_txid)
            continue
        done.append(await finalize_submitted(ark, secret, pending))
    return done


async def finalize_handed_over(
    server: ArkServerRest, secret: bytes, pending: PendingArkTx
) -> FinalizedTx:
    """Finalize a 31341's ``pending_tx`` at the Ark server over REST: the server's own
    signatures checked as on a SubmitTx answer, then ``finalize_submitted``'s checks."""
    return await finalize_submitted(server, secret, await server.submitted_from(pending))


async def finalize_submitted(ark: ArkServer, secret: bytes, submitted: SubmittedTx) -> FinalizedTx:
    """Sign the checkpoints of ``submitted`` and call FinalizeTx, if its ark tx is one this
    wallet signed (refuses with ChallengeRefused otherwise)."""
    owner = bip340.xonly_public_key(secret)
    _check_own_spend(submitted, owner)
    finals = []
    for item in submitted.to_sign:
        if item.owner != owner.hex():
            raise ChallengeRefused(f"checkpoint input {item.vtxo_id} is not this wallet's")
        psbt = arktx.decode_psbt(item.psbt)
        if arktx.tapscript_sighash(psbt, item.input_index).hex() != item.sighash:
            raise ChallengeRefused(f"sighash of checkpoint {item.vtxo_id} does not match its PSBT")
        signature = bip340.schnorr_sign(secret, bytes.fromhex(item.sighash)).hex()
        finals.append(
            ark.add_signatures(
                item.psbt, [InputSignature(item.input_index, owner.hex(), signature)]
            )
        )
    return await ark.finalize_tx(submitted.ark_txid, finals)


def _check_own_spend(submitted: SubmittedTx, owner: bytes) -> None:
    ark = arktx.decode_psbt(submitted.final_ark_tx)
    if arktx.txid(ark) != submitted.ark_txid:
        raise ChallengeRefused("the final ark tx is not the tx named")
    checkpoints = {
        arktx.txid(arktx.decode_psbt(t.psbt)): t
        for t in submitted.to_sign
        if t.owner == owner.hex()
    }
    for index in range(len(ark.inputs)):
        checkpoint = ark.inputs[index].txid.hex()
        if checkpoint not in checkpoints:
            continue
        verdicts = arktx.verify_input_signatures(ark, index)
        if not verdicts.get(owner):
            raise ChallengeRefused(f"ark tx input {index} does not carry this wallet's signature")
        checkpoints.pop(checkpoint)
    if checkpoints:
        raise ChallengeRefused("a checkpoint to sign is not spent by the ark tx")


def check_ownership_proof(proof: OwnershipProof, vtxos: Sequence[Vtxo], owner: str) -> None:
    """Hold an ownership proof to what it claims before signing it: input 0 spends the
    toSpend tx of ``proof.message`` (so no signature can ever spend anything), the other
    inputs are exactly ``vtxos`` on their witness utxos, and every sighash to sign is the
    proof PSBT's own."""
    psbt = intentproof.decode_proof(proof.proof)
    if len(psbt.inputs) != len(vtxos) + 1:
        raise ChallengeRefused("the proof does not prove exactly the wallet's VTXOs")
    first = bytes.fromhex(vtxos[0].script)
    to_spend = intentproof.to_spend_tx(proof.message, first)
    if (psbt.inputs[0].txid, psbt.inputs[0].vout) != (to_spend.txid(), 0):
        raise ChallengeRefused("proof input 0 does not commit to the proof's message")
    for i, vtxo in enumerate(vtxos, start=1):
        inp = psbt.inputs[i]
        if arktx.input_outpoint(psbt, i) != vtxo.vtxo_id or inp.witness_utxo is None:
            raise ChallengeRefused(f"proof input {i} is not VTXO {vtxo.vtxo_id}")
        if (inp.witness_utxo.script_pubkey.data.hex(), inp.witness_utxo.value) != (
            vtxo.script,
            vtxo.amount,
        ):
            raise ChallengeRefused(f"proof input {i} misstates VTXO {vtxo.vtxo_id}")
    own = {s.input_index: s.sighash.hex() for s in intentproof.proof_sighashes(psbt, proof.message)}
    for item in proof.to_sign:
        if own.get(item.input_index) != item.sighash or item.owner != owner:
            raise ChallengeRefused(f"proof challenge {item.input_index} is not the proof's")
