"""Ownership proofs for the ArkBackend interface: from VTXOs to the challenges an owner
signs, and from the owner's signatures to the proof GetPendingTx takes.

Each VTXO is proven through its collaborative leaf (the leaf the owner already signs for
a spend), over its full default taptree, as arkd's clients do; only the owner signs:
arkd skips the signer's key (PINS.md §1.5, docs/simulators.md "Ownership proofs").
"""

from __future__ import annotations

from collections.abc import Sequence

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import ProtocolViolation, VtxoNotOwned
from arkrelay_core.interfaces import InputSignature, InputToSign, OwnershipProof, Vtxo
from arkrelay_core.nostr import bip340

from . import arktx, intentproof
from .convert import ServerParams, owner_key
from .offchain import owned_tree

__all__ = ["add_proof_signatures", "build"]


def build(params: ServerParams, vtxos: Sequence[Vtxo], expire_at: int) -> OwnershipProof:
    if not vtxos:
        raise ValueError("an ownership proof needs at least one VTXO")
    if expire_at < 0:
        raise ValueError("expire_at must be 0 (no expiry) or a unix time")
    message = intentproof.get_pending_tx_message(expire_at)
    inputs = [_proof_input(params, v) for v in vtxos]
    psbt = intentproof.build_proof(message, inputs)
    encoded = arktx.encode_psbt(psbt)
    owners = [vtxos[0].owner, *(v.owner for v in vtxos)]
    to_sign = tuple(
        InputToSign(
            tx_role="intent_proof",
            psbt=encoded,
            input_index=item.input_index,
            sighash=item.sighash.hex(),
            vtxo_id=item.vtxo_id,
            owner=owner_key(owner).hex(),
        )
        for item, owner in zip(intentproof.proof_sighashes(psbt, message), owners, strict=True)
    )
    return OwnershipProof(
        proof=encoded,
        message=message,
        vtxo_ids=tuple(v.vtxo_id for v in vtxos),
        expire_at=expire_at,
        to_sign=to_sign,
    )


def _proof_input(params: ServerParams, vtxo: Vtxo) -> intentproof.ProofInput:
    tree = owned_tree(params, vtxo)
    txid, _, vout = vtxo.vtxo_id.partition(":")
    return intentproof.ProofInput(txid, int(vout), vtxo.amount, tree, tree.leaves[1])


def add_proof_signatures(proof: OwnershipProof, signatures: Sequence[InputSignature]) -> str:
    """Check each signature against the sighash and owner ``proof.to_sign`` names (the
    PSBT is rebuilt from ``proof.proof``, so a tampered ``to_sign`` changes nothing)."""
    try:
        psbt = intentproof.decode_proof(proof.proof)
        sighashes = {
            s.input_index: s.sighash for s in intentproof.proof_sighashes(psbt, proof.message)
        }
    except arktx.ArkTxError as exc:
        raise ProtocolViolation(str(exc), code=ErrorCode.MALFORMED_CONTENT) from exc
    owners = {t.input_index: bytes.fromhex(t.owner) for t in proof.to_sign}
    for sig in signatures:
        digest = sighashes.get(sig.input_index)
        if digest is None:
            raise ProtocolViolation(f"no input {sig.input_index}", code=ErrorCode.MALFORMED_CONTENT)
        try:
            pubkey, signature = bytes.fromhex(sig.pubkey), bytes.fromhex(sig.signature)
        except ValueError as exc:
            raise ProtocolViolation(str(exc), code=ErrorCode.INVALID_SIGNING_RESPONSE) from exc
        if pubkey != owners.get(sig.input_index):
            raise VtxoNotOwned(f"{sig.pubkey} does not own proof input {sig.input_index}")
        if len(signature) != 64 or not bip340.schnorr_verify(pubkey, digest, signature):
            raise ProtocolViolation(
                f"invalid signature for proof input {sig.input_index}",
                code=ErrorCode.INVALID_SIGNING_RESPONSE,
            )
        intentproof.add_proof_signature(psbt, sig.input_index, pubkey, signature)
    return arktx.encode_psbt(psbt)
