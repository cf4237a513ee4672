"""The checks arkd v0.9.15 applies to a submitted or finalized offchain tx, with its errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from embit.psbt import PSBT

from .. import arktx, closures
from ..closures import RelativeLocktime
from ..tapscript import ANCHOR_SCRIPT, TapTree, multisig_keys
from .errors import code
from .vtxos import SimVtxo, recoverable

__all__ = [
    "check_final_checkpoints",
    "check_inputs",
    "check_outputs",
    "check_owner_signatures",
    "check_vtxo_script",
    "parse_checkpoints",
]


def parse_checkpoints(checkpoint_txs: Sequence[str]) -> tuple[dict[str, PSBT], dict[str, str]]:
    """The checkpoints by txid, and each spent VTXO outpoint's checkpoint txid."""
    checkpoints: dict[str, PSBT] = {}
    by_vtxo: dict[str, str] = {}
    for raw in checkpoint_txs:
        try:
            cp = arktx.decode_psbt(raw)
        except arktx.ArkTxError as exc:
            raise code.INVALID_CHECKPOINT_PSBT(f"failed to parse tx: {exc}") from exc
        cp_txid = arktx.txid(cp)
        if not cp.inputs:
            raise code.INVALID_PSBT_MISSING_INPUT(f"invalid checkpoint tx {cp_txid}")
        key = arktx.input_outpoint(cp, 0)
        if key in by_vtxo:
            raise code.INVALID_PSBT_INPUT(f"duplicated vtxo input {key}")
        checkpoints[cp_txid] = cp
        by_vtxo[key] = cp_txid
    return checkpoints, by_vtxo


def check_inputs(
    ark: PSBT,
    checkpoints: Mapping[str, PSBT],
    vtxos: Mapping[str, SimVtxo],
    *,
    now: int,
    exit_delay: int,
    signer: bytes,
    block_type_allowed: bool = True,
) -> tuple[list[arktx.VtxoSpend], int]:
    """The spends the ark tx's inputs make, and the earliest expiry among them."""
    spends: list[arktx.VtxoSpend] = []
    expires_at = 2**62
    for index, inp in enumerate(ark.inputs):
        cp = checkpoints.get(inp.txid.hex())
        if cp is None:
            raise code.INVALID_PSBT_INPUT(f"missing checkpoint tx for input {index}")
        cp_txid = arktx.txid(cp)
        vtxo = vtxos[arktx.input_outpoint(cp, 0)]
        witness_utxo = cp.inputs[0].witness_utxo
        if witness_utxo is None:
            raise code.INVALID_PSBT_INPUT(f"missing witness utxo on input {index}")
        try:
            _, leaf = arktx.spend_leaf(cp, 0)
            leaves = arktx.taptree_leaves(cp, 0)
        except arktx.ArkTxError as exc:
            raise code.INVALID_PSBT_INPUT(f"{exc} in tx {cp_txid}") from exc
        if vtxo.spent:
            raise code.VTXO_ALREADY_SPENT(
                f"{vtxo.outpoint} already spent", vtxo_outpoint=vtxo.outpoint
            )
        if recoverable(vtxo, now):
            raise code.VTXO_RECOVERABLE(
                f"{vtxo.outpoint} is recoverable", vtxo_outpoint=vtxo.outpoint
            )
        check_vtxo_script(
            leaves,
            RelativeLocktime.parse(exit_delay),
            signer,
            block_type_allowed=block_type_allowed,
            tx=cp_txid,
        )
        tree = TapTree.from_leaves(leaves)
        if tree.output_key.hex() != vtxo.xonly:
            raise code.INVALID_PSBT_INPUT(f"expected {vtxo.xonly}, got {tree.output_key.hex()}")
        if witness_utxo.script_pubkey.data != tree.pk_script:
            raise code.INVALID_PSBT_INPUT("witness utxo script mismatch")
        if witness_utxo.value != vtxo.amount:
            raise code.INVALID_PSBT_INPUT(
                f"witness utxo value mismatch: expected {vtxo.amount}, got {witness_utxo.value}"
            )
        if leaf not in leaves or multisig_keys(leaf) is None:
            raise code.INVALID_PSBT_INPUT(f"invalid spending tapscript on input {index}")
        if not ark.inputs[index].taproot_scripts:
            raise code.INVALID_PSBT_INPUT(f"missing taproot leaf script in ark tx input {index}")
        spends.append(arktx.VtxoSpend(vtxo.txid, vtxo.vout, vtxo.amount, tree, leaf))
        expires_at = min(expires_at, vtxo.expires_at)
    return spends, expires_at


def check_vtxo_script(
    leaves: Sequence[bytes],
    min_exit: RelativeLocktime,
    signer: bytes,
    *,
    block_type_allowed: bool = True,
    tx: str = "",
) -> None:
    """arkd's ParseVtxoScript then validateVtxoScriptForSigners on a spent VTXO's leaves
    (pkg/ark-lib/script/vtxo_script.go; internal/core/application/service.go, SubmitOffchainTx):
    every leaf a known closure, every forfeit leaf with the signer's key, no exit shorter
    than ``min_exit``; block delays only where arkd allows them (regtest block settings)."""
    try:
        decoded = closures.decode_vtxo_script([bytes(leaf) for leaf in leaves])
    except closures.ClosureError as exc:
        raise code.INVALID_PSBT_INPUT(f"failed to parse taptree field in tx {tx}: {exc}") from exc
    try:
        closures.validate_vtxo_script(
            decoded, signer, min_exit, block_type_allowed=block_type_allowed
        )
    except closures.ClosureError as exc:
        raise code.INVALID_VTXO_SCRIPT(str(exc)) from exc


def check_outputs(
    ark: PSBT,
    *,
    dust: int,
    vtxo_min_amount: int,
    max_op_return_outputs: int,
    vtxo_max_amount: int = -1,
) -> list[tuple[bytes, int]]:
    """arkd's validateOffchainTxOutputs, without extension outputs (the simulator has none)."""
    vout = ark.tx.vout
    if not vout or vout[-1].script_pubkey.data != ANCHOR_SCRIPT or vout[-1].value != 0:
        raise code.MALFORMED_ARK_TX("the last output must be the anchor")
    outputs: list[tuple[bytes, int]] = []
    op_returns = 0
    for i, out in enumerate(vout[:-1]):
        script, value = out.script_pubkey.data, out.value
        if script[:1] == bytes([arktx.OP_RETURN]):
            op_returns += 1
            _check_sub_dust(i, script, value, dust, vtxo_min_amount)
        else:
            if 0 <= vtxo_max_amount < value:
                raise code.AMOUNT_TOO_HIGH(
                    f"output #{i} amount ({value}) is higher than max vtxo amount: "
                    f"{vtxo_max_amount}",
                    output_index=str(i),
                    amount=str(value),
                    max_amount=str(vtxo_max_amount),
                )
            _check_vtxo_amount(i, value, vtxo_min_amount)
            if value < dust:
                raise code.AMOUNT_TOO_LOW(
                    f"output #{i} amount is below dust limit ({value} < {dust}) but is not "
                    "using OP_RETURN output script",
                    output_index=str(i),
                    amount=str(value),
                    min_amount=str(dust),
                )
            if len(script) != 34 or script[:2] != b"\x51\x20":
                raise code.MALFORMED_ARK_TX(
                    f"output #{i} has amount greater than dust but is not a taproot pkscript"
                )
        outputs.append((script, value))
    if op_returns > max_op_return_outputs:
        raise code.MALFORMED_ARK_TX(
            f"tx has {op_returns} OP_RETURN outputs, max {max_op_return_outputs} are allowed"
        )
    return outputs


def _check_sub_dust(index: int, script: bytes, value: int, dust: int, vtxo_min: int) -> None:
    if arktx.sub_dust_key(script) is None:
        raise code.MALFORMED_ARK_TX(
            f"OP_RETURN output #{index} is not a sub-dust output (the simulator carries no "
            "extension outputs)"
        )
    if value >= dust:
        raise code.MALFORMED_ARK_TX(
            f"subdust OP_RETURN output #{index} has value ({value}) >= dust limit ({dust})"
        )
    _check_vtxo_amount(index, value, vtxo_min)


def _check_vtxo_amount(index: int, value: int, vtxo_min: int) -> None:
    if value < vtxo_min:
        raise code.AMOUNT_TOO_LOW(
            f"output #{index} amount is lower than min vtxo amount: {vtxo_min}",
            output_index=str(index),
            amount=str(value),
            min_amount=str(vtxo_min),
        )


def check_owner_signatures(ark: PSBT, txid: str, signer: bytes) -> None:
    for index in range(len(ark.inputs)):
        keys = arktx.signature_keys(ark, index)
        verdicts = arktx.verify_input_signatures(ark, index)
        owners = [k for k in keys if k != signer]
        if not any(k in verdicts for k in owners):
            raise code.ARK_TX_INPUT_NOT_SIGNED(f"tx {txid} is not signed")
        if not all(verdicts.get(k) for k in owners) or not all(verdicts.values()):
            raise code.INVALID_SIGNATURE(f"invalid signature in ark tx {txid}")


def check_final_checkpoints(
    ark_txid: str, final_checkpoint_txs: Sequence[str], signed: Mapping[str, str]
) -> dict[str, str]:
    """The fully signed checkpoints by txid; they must be exactly the ``signed`` ones."""
    final: dict[str, str] = {}
    for raw in final_checkpoint_txs:
        try:
            cp = arktx.decode_psbt(raw)
            verdicts = arktx.verify_input_signatures(cp, 0)
            keys = arktx.signature_keys(cp, 0)
        except arktx.ArkTxError as exc:
            raise code.INVALID_SIGNATURE(f"invalid signature in checkpoint tx {raw}") from exc
        if not all(verdicts.get(k) for k in keys) or not all(verdicts.values()):
            raise code.INVALID_SIGNATURE(f"invalid signature in checkpoint tx {raw}")
        cp_txid = arktx.txid(cp)
        if cp_txid not in signed:
            raise code.INVALID_PSBT_INPUT(f"tx {cp_txid} not found")
        final[cp_txid] = raw
    if set(final) != set(signed):
        raise code.INVALID_PSBT_MISSING_INPUT(f"missing checkpoint txs for {ark_txid}")
    return final
