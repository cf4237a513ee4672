"""The PSBT side of the offchain flow: building, placing signatures, checking arkd's answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import (
    BackendError,
    InsufficientBalance,
    ProtocolViolation,
    VtxoNotOwned,
)
from arkrelay_core.interfaces import (
    InputSignature,
    InputToSign,
    OffchainTx,
    SubmittedTx,
    TxOutputSpec,
    Vtxo,
)
from arkrelay_core.nostr import bip340

from . import arktx, psbtfacts
from .convert import ServerParams, owner_key
from .tapscript import TapTree, default_vtxo_tree

__all__ = ["add_signatures", "build", "check_submission", "decode_txid", "spent_outpoints"]


def build(
    params: ServerParams,
    inputs: Sequence[Vtxo],
    outputs: Sequence[TxOutputSpec],
    remember_owner: Callable[[str, str], None],
) -> OffchainTx:
    """The ark tx and its checkpoints; ``remember_owner(script, owner)`` learns each output."""
    for o in outputs:
        _check_amount(params, o.amount)
    total_in = sum(v.amount for v in inputs)
    total_out = sum(o.amount for o in outputs)
    if total_out > total_in:
        raise InsufficientBalance(f"outputs need {total_out} sats, inputs hold {total_in}")
    if total_out < total_in:
        raise ValueError(f"outputs ({total_out}) must spend inputs ({total_in}) exactly")
    spends = [_spend(params, v) for v in inputs]
    out_scripts: list[tuple[bytes, int]] = []
    for o in outputs:
        tree = default_vtxo_tree(owner_key(o.owner), params.signer, params.exit_delay)
        # arkd's indexer reports a sub-dust VTXO under its P2TR script too.
        remember_owner(tree.pk_script.hex(), o.owner)
        if o.amount < params.info.dust:
            out_scripts.append((arktx.sub_dust_script(tree.output_key), o.amount))
        else:
            out_scripts.append((tree.pk_script, o.amount))
    sub_dust = sum(1 for o in outputs if o.amount < params.info.dust)
    if sub_dust > params.max_op_return_outputs:
        raise ProtocolViolation(
            f"{sub_dust} outputs are below dust ({params.info.dust} sats); arkd allows at most "
            f"{params.max_op_return_outputs} OP_RETURN outputs in an ark tx",
            code=ErrorCode.MALFORMED_CONTENT,
        )
    try:
        txs = arktx.build_offchain_txs(spends, out_scripts, params.checkpoint_tapscript)
    except arktx.ArkTxError as exc:
        raise ProtocolViolation(str(exc), code=ErrorCode.MALFORMED_CONTENT) from exc
    ark_b64 = arktx.encode_psbt(txs.ark_tx)
    psbtfacts.remember(ark_b64, txs.ark_tx)
    to_sign = tuple(
        InputToSign(
            tx_role="ark_tx",
            psbt=ark_b64,
            input_index=i,
            sighash=arktx.tapscript_sighash(txs.ark_tx, i).hex(),
            vtxo_id=v.vtxo_id,
            owner=v.owner,
        )
        for i, v in enumerate(inputs)
    )
    return OffchainTx(
        ark_txid=arktx.txid(txs.ark_tx),
        ark_tx=ark_b64,
        checkpoint_txs=tuple(arktx.encode_psbt(cp) for cp in txs.checkpoints),
        to_sign=to_sign,
    )


def _check_amount(params: ServerParams, amount: int) -> None:
    """arkd's floor for every output, sub-dust or not: GetInfo.vtxo_min_amount (at least 1).

    arkd's default vtxo_min_amount is the dust limit, which rules sub-dust outputs out; an
    operator enables them by lowering it (``ARKD_VTXO_MIN_AMOUNT``).
    """
    floor = max(1, params.info.vtxo_min_amount)
    if amount < floor:
        raise ProtocolViolation(
            f"output of {amount} sats is below the server's minimum ({floor} sats)",
            code=ErrorCode.MALFORMED_CONTENT,
        )


def owned_tree(params: ServerParams, vtxo: Vtxo) -> TapTree:
    """The default tree ``vtxo.owner`` holds ``vtxo`` under (with the current signer or a
    deprecated one); VtxoNotOwned if its script is no such tree."""
    key = owner_key(vtxo.owner)
    for signer in params.signers:
        tree = default_vtxo_tree(key, signer, params.exit_delay)
        if tree.pk_script.hex() == vtxo.script.lower():
            return tree
    raise VtxoNotOwned(f"VTXO {vtxo.vtxo_id} is not locked to {vtxo.owner}'s default script")


def _spend(params: ServerParams, vtxo: Vtxo) -> arktx.VtxoSpend:
    tree = owned_tree(params, vtxo)
    txid, _, vout = vtxo.vtxo_id.partition(":")
    return arktx.VtxoSpend(txid, int(vout), vtxo.amount, tree, tree.leaves[1])


def add_signatures(psbt: str, signatures: Sequence[InputSignature]) -> str:
    try:
        packet = arktx.decode_psbt(psbt)
    except arktx.ArkTxError as exc:
        raise ProtocolViolation(str(exc), code=ErrorCode.MALFORMED_CONTENT) from exc
    for sig in signatures:
        if not 0 <= sig.input_index < len(packet.inputs):
            raise ProtocolViolation(f"no input {sig.input_index}", code=ErrorCode.MALFORMED_CONTENT)
        try:
            pubkey = bytes.fromhex(sig.pubkey)
            signature = bytes.fromhex(sig.signature)
            keys = arktx.signature_keys(packet, sig.input_index)
            digest = arktx.tapscript_sighash(packet, sig.input_index)
        except (ValueError, arktx.ArkTxError) as exc:
            raise ProtocolViolation(str(exc), code=ErrorCode.INVALID_SIGNING_RESPONSE) from exc
        if pubkey not in keys:
            raise VtxoNotOwned(f"{sig.pubkey} cannot sign input {sig.input_index}")
        if len(signature) != 64 or not bip340.schnorr_verify(pubkey, digest, signature):
            raise ProtocolViolation(
                f"invalid signature for input {sig.input_index}",
                code=ErrorCode.INVALID_SIGNING_RESPONSE,
            )
        arktx.add_signature(packet, sig.input_index, pubkey, signature)
    signed = arktx.encode_psbt(packet)
    psbtfacts.remember(signed, packet)
    return signed


def decode_txid(psbt: str) -> str:
    try:
        return psbtfacts.facts(psbt).txid
    except arktx.ArkTxError as exc:
        raise ProtocolViolation(str(exc), code=ErrorCode.MALFORMED_CONTENT) from exc


def spent_outpoints(checkpoint_txs: Sequence[str]) -> tuple[str, ...]:
    try:
        return tuple(psbtfacts.facts(cp).spends[0] for cp in checkpoint_txs)
    except arktx.ArkTxError as exc:
        raise ProtocolViolation(str(exc), code=ErrorCode.MALFORMED_CONTENT) from exc


def check_submission(params: ServerParams, resp: Any) -> SubmittedTx:
    """Check arkd's co-signatures (PINS.md §1.5 step 4) and list what is left to sign."""
    signers = set(params.signers)
    final = arktx.decode_psbt(resp.final_ark_tx)
    psbtfacts.remember(resp.final_ark_tx, final)
    order = {inp.txid.hex(): i for i, inp in enumerate(final.inputs)}
    checkpoints = sorted(
        ((b64, arktx.decode_psbt(b64)) for b64 in resp.signed_checkpoint_txs),
        key=lambda item: order.get(arktx.txid(item[1]), len(order)),
    )
    signed = [(final, i) for i in range(len(final.inputs))]
    signed += [(packet, 0) for _, packet in checkpoints]
    for packet, i in signed:
        # Only the server's signatures: the wallets' were verified when they were placed.
        verdicts = arktx.verify_input_signatures(packet, i, only=signers)
        if not any(verdicts.values()):
            raise BackendError(
                f"arkd returned tx {arktx.txid(packet)} without a valid server signature",
                code=ErrorCode.INTERNAL,
            )
    to_sign = []
    for b64, packet in checkpoints:
        owner = next(k for k in arktx.signature_keys(packet, 0) if k not in signers)
        to_sign.append(
            InputToSign(
                tx_role="checkpoint",
                psbt=b64,
                input_index=0,
                sighash=arktx.tapscript_sighash(packet, 0).hex(),
                vtxo_id=arktx.input_outpoint(packet, 0),
                owner=owner.hex(),
            )
        )
    return SubmittedTx(
        ark_txid=resp.ark_txid,
        final_ark_tx=resp.final_ark_tx,
        signed_checkpoint_txs=tuple(t.psbt for t in to_sign),
        to_sign=tuple(to_sign),
    )
