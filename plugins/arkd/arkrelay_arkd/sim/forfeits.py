"""What the batch's participants sign at finalization, checked as arkd v0.9.15 checks it.

- Boarding owners sign their inputs of the commitment tx through the collaborative leaf
  (tx-builder ``VerifyBoardingTapscriptSigs``): the signed PSBT must be this batch's
  commitment tx, the leaf one of the boarding script's, every owner key's signature valid
  over the server's own prevouts.
- VTXO owners sign a forfeit tx per VTXO (``VerifyForfeitTxs``): the VTXO and one of the
  batch's connectors in, the server's forfeit output (both amounts) and the P2A anchor
  out, version 3; the server rebuilds it and compares txids. The owner's signatures are
  checked at finalization (``verifyForfeitTxsSigs``), where a bad one fails the batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from embit.psbt import PSBT
from embit.psbt import InputScope as PSBTInput
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from .. import arktx
from ..tapscript import ANCHOR_SCRIPT, LEAF_VERSION, TapTree, multisig_keys
from . import intentcheck
from .commitment import BatchTxs, LeafSignatures
from .errors import code
from .intents import BoardingInput
from .vtxos import SimVtxo

__all__ = ["Forfeit", "check_boarding_signatures", "check_forfeit", "check_forfeit_signatures"]

FORFEIT_VERSION = 3
SEQUENCE_FINAL = 0xFFFFFFFF


def _leaf_of(tree: TapTree, control: bytes, script: bytes) -> bool:
    return script in tree.leaves and tree.control_block(tree.index(script)) == control


def check_boarding_signatures(
    signed_b64: str,
    txs: BatchTxs,
    boarding: Mapping[str, BoardingInput],
    signer_xonly: bytes,
) -> dict[int, LeafSignatures]:
    """The boarding inputs ``signed_b64`` signs, each with its leaf and owner signatures."""

    def refuse(reason: str) -> Exception:
        return code.INVALID_BOARDING_INPUT_SIG(
            f"failed to verify boarding tapscript sigs: {reason}", signed_commitment_tx=signed_b64
        )

    try:
        signed = arktx.decode_psbt(signed_b64)
    except arktx.ArkTxError as exc:
        raise refuse(str(exc)) from exc
    if signed.tx.txid() != txs.commitment.tx.txid():
        raise refuse(f"signed tx {signed.tx.txid().hex()} is not the commitment tx {txs.txid}")
    found: dict[int, LeafSignatures] = {}
    for outpoint, index in txs.boarding_index.items():
        inp = signed.inputs[index]
        if not inp.taproot_sigs:
            continue
        try:
            control, script = arktx.spend_leaf(signed, index)
        except arktx.ArkTxError as exc:
            raise refuse(f"input {index}: {exc}") from exc
        if not _leaf_of(TapTree.from_leaves(boarding[outpoint].leaves), control, script):
            raise refuse(f"input {index} does not spend a leaf of its boarding script")
        mine = PSBT.parse(txs.commitment.serialize())
        mine.inputs[index].taproot_scripts = {control: script + bytes([LEAF_VERSION])}
        mine.inputs[index].taproot_sigs = dict(inp.taproot_sigs)
        valid = arktx.verify_input_signatures(mine, index)
        owners = [k for k in (multisig_keys(script) or []) if k != signer_xonly]
        if not owners:
            raise refuse(f"input {index}: the leaf has no owner key")
        for key in owners:
            if not valid.get(key):
                raise refuse(f"invalid signature for input {index} and key {key.hex()}")
        found[index] = LeafSignatures(control, script, {k: _sig(inp, k) for k in owners})
    if not found:
        raise refuse("no signed inputs found")
    return found


def _sig(inp: PSBTInput, key: bytes) -> bytes:
    return next(sig for (pub, _), sig in inp.taproot_sigs.items() if pub.xonly() == key)


@dataclasses.dataclass
class Forfeit:
    vtxo: SimVtxo
    connector: str  # outpoint
    psbt: PSBT  # rebuilt by the server, with the owner's leaf and signatures

    @property
    def txid(self) -> str:
        return arktx.txid(self.psbt)


def check_forfeit(
    tx_b64: str,
    vtxos: Mapping[str, SimVtxo],
    connectors: Mapping[str, tuple[bytes, int]],
    forfeit_script: bytes,
    dust: int,
) -> Forfeit:
    """One forfeit tx against the batch's VTXOs to forfeit and its connector leaves."""

    def refuse(reason: str) -> Exception:
        return code.INVALID_FORFEIT_TXS(f"failed to sign forfeit txs: {reason}", forfeit_txs=tx_b64)

    try:
        given = arktx.decode_psbt(tx_b64)
    except arktx.ArkTxError as exc:
        raise refuse(str(exc)) from exc
    if len(given.inputs) != 2:
        raise refuse(f"invalid forfeit tx {arktx.txid(given)}: expected 2 inputs")
    outpoints = [arktx.input_outpoint(given, i) for i in range(2)]
    connector_at = next((i for i, o in enumerate(outpoints) if o in connectors), None)
    if connector_at is None:
        raise refuse(f"missing connector in forfeit tx {arktx.txid(given)}")
    vtxo_at = 1 - connector_at
    vtxo = vtxos.get(outpoints[vtxo_at])
    if vtxo is None:
        raise refuse(f"missing vtxo {outpoints[vtxo_at]}")
    try:
        control, script = arktx.spend_leaf(given, vtxo_at)
    except arktx.ArkTxError as exc:
        raise refuse(str(exc)) from exc
    if multisig_keys(script) is None:
        raise refuse("invalid forfeit closure script")
    connector_script, connector_amount = connectors[outpoints[connector_at]]
    amount = vtxo.amount + connector_amount
    if amount < dust:
        raise refuse(f"forfeit tx output amount is dust, {amount} < {dust}")
    prevouts = {
        vtxo_at: (bytes.fromhex(vtxo.script), vtxo.amount),
        connector_at: (connector_script, connector_amount),
    }
    tx = Transaction(
        version=FORFEIT_VERSION,
        vin=[
            TransactionInput(given.inputs[i].txid, given.inputs[i].vout, sequence=SEQUENCE_FINAL)
            for i in range(2)
        ],
        vout=[
            TransactionOutput(amount, Script(forfeit_script)),
            TransactionOutput(0, Script(ANCHOR_SCRIPT)),
        ],
        locktime=0,
    )
    if tx.txid() != given.tx.txid():
        raise refuse(
            f"invalid forfeit tx: expected txid {tx.txid().hex()}, got {arktx.txid(given)}"
        )
    rebuilt = PSBT(tx, unknown={})
    for i, inp in enumerate(rebuilt.inputs):
        inp.unknown = {}
        inp.witness_utxo = TransactionOutput(prevouts[i][1], Script(prevouts[i][0]))
    rebuilt.inputs[vtxo_at].taproot_scripts = {control: script + bytes([LEAF_VERSION])}
    rebuilt.inputs[vtxo_at].taproot_sigs = dict(given.inputs[vtxo_at].taproot_sigs)
    return Forfeit(vtxo, outpoints[connector_at], rebuilt)


def check_forfeit_signatures(forfeit: Forfeit, signer_xonly: bytes) -> str | None:
    """Why the owner's signatures on ``forfeit`` are not good, or None when they are: the
    leaf must be one of the VTXO's tree and every key but the server's must have signed."""
    vtxo_at = next(
        i for i in range(2) if arktx.input_outpoint(forfeit.psbt, i) == forfeit.vtxo.outpoint
    )
    control, script = arktx.spend_leaf(forfeit.psbt, vtxo_at)
    if not _commits_to(control, script, bytes.fromhex(forfeit.vtxo.script)):
        return f"forfeit tx {forfeit.txid} spends a leaf its vtxo does not have"
    valid = arktx.verify_input_signatures(forfeit.psbt, vtxo_at)
    for key in multisig_keys(script) or []:
        if key != signer_xonly and not valid.get(key):
            return f"invalid signature for forfeit tx {forfeit.txid} and key {key.hex()}"
    return None


def _commits_to(control: bytes, script: bytes, pk_script: bytes) -> bool:
    try:
        intentcheck.check_control_block(0, control, script, pk_script)
    except intentcheck.ProofRefused:
        return False
    return True
