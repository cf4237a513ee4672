"""Ownership proofs ("intents") as arkd v0.9.15 builds them: the BIP-322-like proof PSBT.

ark-lib ``intent.New`` (pkg/ark-lib/intent/proof.go at v0.9.15): a virtual ``toSpend`` tx
commits to the tagged hash ``ark-intent-proof-message`` of the message; the ``toSign`` tx
(the proof) spends toSpend's only output as input 0, then every VTXO being proven, and pays
one empty ``OP_RETURN``. Every input carries SIGHASH_ALL; the message is also kept in the
PSBT global 0x09 (BIP-322's PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE). The owner signs every
input through the VTXO's collaborative leaf: input 0 too, over the first VTXO's leaf, as
@arkade-os/sdk does. arkd does not require that one (it only checks inputs carrying a
leaf), but signing it costs one more challenge and keeps the proof whole.

The owner's sighashes depend on the message, so the message is fixed before anything is
signed: a proof is built for one message and only that message verifies.

Shared by the client (to build proofs for wallets to sign) and the simulator (whose
verifier, ``sim.intentcheck``, rebuilds toSpend the same way).
"""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
import json
from collections.abc import Sequence

from embit import ec
from embit.psbt import PSBT, InputScope, PSBTError
from embit.script import Script
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from arkrelay_core.nostr import bip340

from . import arktx
from .tapscript import LEAF_VERSION, TAPTREE_FIELD_KEY, TapTree, encode_taptree_field, leaf_hash

__all__ = [
    "GET_PENDING_TX",
    "MESSAGE_TAG",
    "ProofInput",
    "ProofPSBT",
    "ProofSighash",
    "add_proof_signature",
    "build_proof",
    "decode_proof",
    "get_pending_tx_message",
    "message_hash",
    "new_proof",
    "prevouts",
    "proof_sighashes",
    "sign_proof",
    "tapscript_sighash",
    "to_spend_tx",
]

MESSAGE_TAG = b"ark-intent-proof-message"
GET_PENDING_TX = "get-pending-tx"
#: BIP-322's PSBT_GLOBAL_GENERIC_SIGNED_MESSAGE, which arkd's New writes.
GLOBAL_MESSAGE_KEY = b"\x09"
OP_RETURN_EMPTY = b"\x6a"
#: arkd's New asks for SIGHASH_ALL on every input (a 65-byte signature).
PROOF_SIGHASH = SIGHASH.ALL
_TO_SPEND_PREVOUT = (b"\x00" * 32, 0xFFFFFFFF)


class _ExactInput(InputScope):
    # embit turns a sequence of 0 into 0xFFFFFFFF when it rebuilds the unsigned tx; a proof
    # input may well have sequence 0 (ark-lib's default), and its txid and sighashes with it.
    @property
    def vin(self) -> TransactionInput:
        sequence = 0xFFFFFFFF if self.sequence is None else self.sequence
        return TransactionInput(self.txid, self.vout, sequence=sequence)


class ProofPSBT(PSBT):
    """embit's PSBT, keeping the unsigned tx's sequences and version as they were."""

    PSBTIN_CLS = _ExactInput

    @property
    def tx(self) -> Transaction:
        return self.TX_CLS(
            version=2 if self.tx_version is None else self.tx_version,
            locktime=self.locktime or 0,
            vin=[inp.vin for inp in self.inputs],
            vout=[out.vout for out in self.outputs],
        )


def decode_proof(b64: str) -> ProofPSBT:
    try:
        return ProofPSBT.from_string(b64)
    except (PSBTError, ValueError, binascii.Error, EOFError, IndexError) as exc:
        raise arktx.ArkTxError(f"cannot parse PSBT: {exc}") from exc


def message_hash(message: str) -> bytes:
    tag = hashlib.sha256(MESSAGE_TAG).digest()
    return hashlib.sha256(tag + tag + message.encode()).digest()


def get_pending_tx_message(expire_at: int) -> str:
    """The message arkd re-encodes before verifying (Go's json of GetPendingTxMessage:
    ``type`` then ``expire_at``, no spaces). A proof signed over any other spelling of the
    same content fails arkd's check, so clients must sign exactly this string."""
    return json.dumps({"type": GET_PENDING_TX, "expire_at": int(expire_at)}, separators=(",", ":"))


def to_spend_tx(message: str, pk_script: bytes) -> Transaction:
    """toSpend: version 0, input (zero hash, 0xFFFFFFFF) with scriptSig ``OP_0 <hash>``,
    sequence 0; one 0-value output to ``pk_script`` (the first proven input's script)."""
    txid, vout = _TO_SPEND_PREVOUT
    return Transaction(
        version=0,
        vin=[
            TransactionInput(
                txid, vout, script_sig=Script(b"\x00\x20" + message_hash(message)), sequence=0
            )
        ],
        vout=[TransactionOutput(0, Script(pk_script))],
        locktime=0,
    )


@dataclasses.dataclass(frozen=True)
class ProofInput:
    """A VTXO to prove: its outpoint, amount, script tree and the leaf the owner signs."""

    txid: str
    vout: int
    amount: int
    tree: TapTree
    leaf: bytes
    sequence: int = 0xFFFFFFFF


@dataclasses.dataclass(frozen=True)
class ProofSighash:
    input_index: int
    sighash: bytes
    #: The outpoint this input proves ("" for input 0, the message input).
    vtxo_id: str


def new_proof(
    message: str,
    inputs: Sequence[tuple[str, int, int, bytes, int]],
    outputs: Sequence[tuple[bytes, int]] = (),
) -> PSBT:
    """ark-lib's ``New``: ``inputs`` are (txid, vout, sequence, script, amount); with no
    ``outputs`` the proof pays one 0-sat empty OP_RETURN."""
    if not inputs:
        raise arktx.ArkTxError("missing inputs")
    first_script = inputs[0][3]
    to_spend = to_spend_tx(message, first_script)
    vin = [TransactionInput(to_spend.txid(), 0, sequence=inputs[0][2])]
    vin += [TransactionInput(bytes.fromhex(t), v, sequence=seq) for t, v, seq, _, _ in inputs]
    vout = [TransactionOutput(a, Script(s)) for s, a in outputs] or [
        TransactionOutput(0, Script(OP_RETURN_EMPTY))
    ]
    tx = Transaction(version=2, vin=vin, vout=vout, locktime=0)
    # embit shares a default dict between scopes built without ``unknown``: pass fresh ones.
    psbt = ProofPSBT(tx, unknown={GLOBAL_MESSAGE_KEY: message.encode()})
    spent = [(first_script, 0), *((s, a) for _, _, _, s, a in inputs)]
    for inp, (script, amount) in zip(psbt.inputs, spent, strict=True):
        inp.witness_utxo = TransactionOutput(amount, Script(script))
        inp.sighash_type = PROOF_SIGHASH
    return psbt


def build_proof(
    message: str, inputs: Sequence[ProofInput], outputs: Sequence[tuple[bytes, int]] = ()
) -> PSBT:
    """The unsigned proof for ``inputs`` under ``message``, each input (the message input
    with the first VTXO's) carrying the leaf to sign and the VTXO's taptree; ``outputs``
    (script, sats) are what a ``register`` intent asks the batch to pay."""
    psbt = new_proof(
        message,
        [(i.txid, i.vout, i.sequence, i.tree.pk_script, i.amount) for i in inputs],
        outputs,
    )
    for inp, spend in zip(psbt.inputs, [inputs[0], *inputs], strict=True):
        control = spend.tree.control_block(spend.tree.index(spend.leaf))
        inp.taproot_scripts[control] = spend.leaf + bytes([LEAF_VERSION])
        inp.unknown = {TAPTREE_FIELD_KEY: encode_taptree_field(spend.tree.leaves)}
    return psbt


def prevouts(psbt: PSBT, to_spend: Transaction | None = None) -> list[tuple[bytes, int]]:
    """(script, amount) each input spends, as arkd's prevout fetcher answers: by outpoint
    from the witness utxos, except toSpend's output, which is rebuilt (0 sats)."""
    by_outpoint: dict[tuple[bytes, int], tuple[bytes, int]] = {}
    for inp in psbt.inputs:
        if inp.witness_utxo is None:
            raise arktx.ArkTxError("missing witness utxo")
        by_outpoint[(inp.txid, inp.vout)] = (
            inp.witness_utxo.script_pubkey.data,
            inp.witness_utxo.value,
        )
    if to_spend is not None:
        by_outpoint[(to_spend.txid(), 0)] = (to_spend.vout[0].script_pubkey.data, 0)
    return [by_outpoint[(inp.txid, inp.vout)] for inp in psbt.inputs]


def tapscript_sighash(
    psbt: PSBT, index: int, spent: Sequence[tuple[bytes, int]], script: bytes, sighash: int
) -> bytes:
    """BIP341 script-path sighash of input ``index`` over ``script`` (base leaf version)."""
    return psbt.tx.sighash_taproot(
        index,
        script_pubkeys=[Script(s) for s, _ in spent],
        values=[v for _, v in spent],
        sighash=sighash,
        ext_flag=1,
        script=Script(script),
        leaf_version=LEAF_VERSION,
    )


def proof_sighashes(psbt: PSBT, message: str) -> list[ProofSighash]:
    """What the owner signs: one SIGHASH_ALL sighash per input, over its one leaf."""
    if len(psbt.inputs) < 2:
        raise arktx.ArkTxError("a proof has the message input and at least one VTXO")
    first_script = psbt.inputs[1].witness_utxo.script_pubkey.data
    spent = prevouts(psbt, to_spend_tx(message, first_script))
    out = []
    for i in range(len(psbt.inputs)):
        _, script = arktx.spend_leaf(psbt, i)
        vtxo_id = arktx.input_outpoint(psbt, i) if i else ""
        out.append(
            ProofSighash(i, tapscript_sighash(psbt, i, spent, script, PROOF_SIGHASH), vtxo_id)
        )
    return out


def add_proof_signature(psbt: PSBT, index: int, xonly: bytes, signature: bytes) -> None:
    """Place a 64-byte BIP340 signature over ``proof_sighashes``'s sighash of ``index``
    (the SIGHASH_ALL byte is appended, as BIP341 encodes a non-default sighash type)."""
    if len(signature) != 64:
        raise arktx.ArkTxError("a BIP340 signature is 64 bytes")
    _, script = arktx.spend_leaf(psbt, index)
    leaf = leaf_hash(script)
    sigs = psbt.inputs[index].taproot_sigs
    for key in [k for k in sigs if k[0].xonly() == xonly and k[1] == leaf]:
        del sigs[key]
    sigs[(ec.PublicKey.from_xonly(xonly), leaf)] = signature + bytes([PROOF_SIGHASH])


def sign_proof(psbt: PSBT, message: str, secret: bytes) -> None:
    """Sign every input with ``secret`` (tests and the reference wallet)."""
    xonly = bip340.xonly_public_key(secret)
    for item in proof_sighashes(psbt, message):
        add_proof_signature(
            psbt, item.input_index, xonly, bip340.schnorr_sign(secret, item.sighash)
        )
