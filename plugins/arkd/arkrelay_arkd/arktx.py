"""Ark transactions as PSBTs: build the ark tx and its checkpoints, hash, sign, verify.

Follows ark-lib's ``offchain.BuildTxs`` (arkd v0.9.15, PINS.md §1.5): one version-3
checkpoint tx per input VTXO, spending it through its collaborative leaf into a checkpoint
output (tree [server unroll closure, the same collaborative leaf]) plus the P2A anchor; then
the ark tx spending every checkpoint output through that leaf, paying the receivers with the
anchor last. A receiver below the dust limit is paid with arkd's sub-dust form,
``OP_RETURN <output key>`` instead of ``OP_1 <output key>`` (PINS.md §1.3). PSBT parsing,
serialization are embit's; the BIP341 sighash is ``arkrelay_core.bitcoin``'s (embit's is
wrong for SINGLE and ANYONECANPAY); signatures are BIP340 via coincurve
(``arkrelay_core.nostr.bip340``).

Both the client and the simulator use this module, so a tx the client builds is the tx the
simulator rebuilds and compares, exactly as arkd rebuilds and compares.
"""

from __future__ import annotations

import binascii
import dataclasses
from collections.abc import Collection, Iterable, Sequence

from embit import ec
from embit.psbt import PSBT, PSBTError
from embit.script import Script
from embit.transaction import (
    Transaction,
    TransactionError,
    TransactionInput,
    TransactionOutput,
)

from arkrelay_core.bitcoin import (
    SIGHASH_DEFAULT,
    InvalidHashType,
    SighashError,
    SingleWithoutOutput,
    taproot_sighash,
)
from arkrelay_core.nostr import bip340

from .tapscript import (
    ANCHOR_SCRIPT,
    LEAF_VERSION,
    TAPTREE_FIELD_KEY,
    TapTree,
    checkpoint_tree,
    decode_taptree_field,
    encode_taptree_field,
    leaf_hash,
    multisig_keys,
)

__all__ = [
    "ArkTxError",
    "OffchainTxs",
    "SighashRefused",
    "VtxoOutput",
    "VtxoSpend",
    "add_signature",
    "build_offchain_txs",
    "decode_psbt",
    "encode_psbt",
    "input_outpoint",
    "leaf_sighash",
    "sign_input",
    "signature_hash_type",
    "signature_keys",
    "spend_leaf",
    "sub_dust_key",
    "sub_dust_script",
    "tapscript_sighash",
    "taptree_leaves",
    "txid",
    "verify_input_signatures",
    "vtxo_outputs",
    "witness_prevouts",
]

TX_VERSION = 3
SEQUENCE_FINAL = 0xFFFFFFFF
OP_RETURN = 0x6A
_P2TR_PREFIX = b"\x51\x20"
_SUB_DUST_PREFIX = bytes([OP_RETURN, 32])
#: Push opcodes (OP_PUSHDATA1/2/4) and the width of the length that follows each.
_PUSHDATA_WIDTH = {0x4C: 1, 0x4D: 2, 0x4E: 4}


class ArkTxError(ValueError):
    """A PSBT is malformed or does not have the shape an ark or checkpoint tx must have."""


class SighashRefused(ArkTxError):
    """A signature's hash type has no BIP341 digest here; the text is btcd's
    (txscript ``calcTaprootSignatureHashRaw``), which arkd passes on."""


@dataclasses.dataclass(frozen=True)
class VtxoSpend:
    """One input VTXO: where it is, what it holds, its tree, and the leaf that spends it."""

    txid: str
    vout: int
    amount: int
    tree: TapTree
    leaf: bytes  # the collaborative closure, one of tree.leaves


@dataclasses.dataclass(frozen=True)
class VtxoOutput:
    """An ark-tx output that becomes a VTXO at FinalizeTx.

    ``script`` is the P2TR pkScript arkd's indexer reports for it, also for a sub-dust
    output (arkd stores the output key and renders every VTXO script as ``5120<key>``).
    """

    index: int
    script: bytes
    amount: int
    sub_dust: bool


@dataclasses.dataclass(frozen=True)
class OffchainTxs:
    ark_tx: PSBT
    checkpoints: tuple[PSBT, ...]


def build_offchain_txs(
    spends: Sequence[VtxoSpend],
    outputs: Sequence[tuple[bytes, int]],
    checkpoint_tapscript: bytes,
) -> OffchainTxs:
    """The ark tx and its checkpoints; ``outputs`` are (pkScript, amount), anchor excluded."""
    if not spends:
        raise ArkTxError("an ark tx needs at least one input")
    if sum(s.amount for s in spends) != sum(a for _, a in outputs):
        raise ArkTxError("inputs and outputs of an ark tx must have equal sums")
    checkpoints: list[PSBT] = []
    ark_spends: list[VtxoSpend] = []
    for spend in spends:
        tree = checkpoint_tree(checkpoint_tapscript, spend.leaf)
        checkpoint = _spending_psbt([spend], [(tree.pk_script, spend.amount)])
        checkpoints.append(checkpoint)
        ark_spends.append(VtxoSpend(txid(checkpoint), 0, spend.amount, tree, spend.leaf))
    return OffchainTxs(_spending_psbt(ark_spends, outputs), tuple(checkpoints))


def _spending_psbt(spends: Sequence[VtxoSpend], outputs: Sequence[tuple[bytes, int]]) -> PSBT:
    tx = Transaction(
        version=TX_VERSION,
        vin=[
            TransactionInput(bytes.fromhex(s.txid), s.vout, sequence=SEQUENCE_FINAL) for s in spends
        ],
        vout=[
            *(TransactionOutput(amount, Script(script)) for script, amount in outputs),
            TransactionOutput(0, Script(ANCHOR_SCRIPT)),
        ],
        locktime=0,
    )
    psbt = PSBT(tx)
    for inp, spend in zip(psbt.inputs, spends, strict=True):
        inp.witness_utxo = TransactionOutput(spend.amount, Script(spend.tree.pk_script))
        control = spend.tree.control_block(spend.tree.index(spend.leaf))
        inp.taproot_scripts[control] = spend.leaf + bytes([LEAF_VERSION])
        # embit shares one default dict between scopes built without `unknown`: never
        # mutate it in place.
        inp.unknown = {TAPTREE_FIELD_KEY: encode_taptree_field(spend.tree.leaves)}
    return psbt


def decode_psbt(b64: str) -> PSBT:
    try:
        return PSBT.from_string(b64)
    except (
        PSBTError,
        TransactionError,
        ValueError,
        binascii.Error,
        EOFError,
        IndexError,
    ) as exc:
        raise ArkTxError(f"cannot parse PSBT: {exc}") from exc


def encode_psbt(psbt: PSBT) -> str:
    return psbt.to_string()


def txid(psbt: PSBT) -> str:
    return psbt.tx.txid().hex()


def input_outpoint(psbt: PSBT, index: int) -> str:
    inp = psbt.inputs[index]
    return f"{inp.txid.hex()}:{inp.vout}"


def spend_leaf(psbt: PSBT, index: int) -> tuple[bytes, bytes]:
    """(control block, script) of the one tap leaf input ``index`` spends."""
    self_scripts = psbt.inputs[index].taproot_scripts
    if len(self_scripts) != 1:
        raise ArkTxError(f"input {index} must carry exactly one tap leaf script")
    control, value = next(iter(self_scripts.items()))
    if not value or value[-1] != LEAF_VERSION:
        raise ArkTxError(f"input {index} has an unsupported leaf version")
    return control, value[:-1]


def taptree_leaves(psbt: PSBT, index: int) -> list[bytes]:
    raw = psbt.inputs[index].unknown.get(TAPTREE_FIELD_KEY)
    if raw is None:
        raise ArkTxError(f"input {index} has no taptree field")
    try:
        return decode_taptree_field(raw)
    except (ValueError, IndexError) as exc:
        raise ArkTxError(f"input {index}: bad taptree field: {exc}") from exc


def leaf_sighash(
    tx: bytes, index: int, spent: Sequence[tuple[bytes, int]], script: bytes, hash_type: int
) -> bytes:
    """BIP341 script-path sighash of input ``index`` of the serialized ``tx`` over ``script``
    (base leaf version), ``spent`` the (pkScript, amount) of every input's prevout.

    Every taproot digest of this plugin, client and simulator, comes from here and so from
    ``arkrelay_core.bitcoin`` (embit 0.8's is wrong for SINGLE and ANYONECANPAY). A hash
    type with no digest raises :class:`SighashRefused` with btcd's text, as arkd reports it.
    """
    try:
        return taproot_sighash(tx, index, spent, hash_type, leaf=script)
    except InvalidHashType as exc:
        raise SighashRefused(f"invalid taproot sighash type: {hash_type}") from exc
    except SingleWithoutOutput as exc:
        raise SighashRefused("invalid sighash type for input") from exc
    except SighashError as exc:
        raise ArkTxError(str(exc)) from exc


def witness_prevouts(psbt: PSBT) -> list[tuple[bytes, int]]:
    """(pkScript, amount) of every input's witness utxo."""
    if any(inp.witness_utxo is None for inp in psbt.inputs):
        raise ArkTxError("every input needs its witness utxo to be signed")
    return [(i.witness_utxo.script_pubkey.data, i.witness_utxo.value) for i in psbt.inputs]


def tapscript_sighash(psbt: PSBT, index: int, hash_type: int = SIGHASH_DEFAULT) -> bytes:
    """BIP341 sighash (script path, SIGHASH_DEFAULT unless told) of input ``index`` over
    its leaf, prevouts from the witness utxos."""
    _, script = spend_leaf(psbt, index)
    spent = witness_prevouts(psbt)
    return leaf_sighash(psbt.tx.serialize(), index, spent, script, hash_type)


def signature_hash_type(signature: bytes) -> int:
    """The hash type a PSBT tap script signature declares: 64 bytes SIGHASH_DEFAULT, 65 its
    last byte (btcd's PSBT reader keeps a 0 there, which arkd then hashes as DEFAULT)."""
    if len(signature) == 64:
        return SIGHASH_DEFAULT
    if len(signature) == 65:
        return signature[64]
    raise ArkTxError("a BIP340 signature is 64 bytes, or 65 with its hash type")


def signature_keys(psbt: PSBT, index: int) -> list[bytes]:
    """The x-only keys the spending leaf of input ``index`` requires signatures from."""
    _, script = spend_leaf(psbt, index)
    keys = multisig_keys(script)
    if keys is None:
        raise ArkTxError(f"input {index} does not spend a multisig closure")
    return keys


def add_signature(psbt: PSBT, index: int, xonly: bytes, signature: bytes) -> None:
    """Put a BIP340 signature in PSBT_IN_TAP_SCRIPT_SIG of input ``index`` (replacing any):
    64 bytes for SIGHASH_DEFAULT, 65 with any other hash type."""
    signature_hash_type(signature)
    _, script = spend_leaf(psbt, index)
    sigs = psbt.inputs[index].taproot_sigs
    leaf = leaf_hash(script)
    for key in [k for k in sigs if k[0].xonly() == xonly and k[1] == leaf]:
        del sigs[key]
    sigs[(ec.PublicKey.from_xonly(xonly), leaf)] = signature


def sign_input(psbt: PSBT, index: int, secret: bytes, hash_type: int = SIGHASH_DEFAULT) -> bytes:
    """Sign input ``index`` with ``secret`` and place the signature; returns it (with its
    hash type byte unless SIGHASH_DEFAULT)."""
    digest = tapscript_sighash(psbt, index, hash_type)
    signature = bip340.schnorr_sign(secret, digest)
    if hash_type != SIGHASH_DEFAULT:
        signature += bytes([hash_type])
    add_signature(psbt, index, bip340.xonly_public_key(secret), signature)
    return signature


def verify_input_signatures(
    psbt: PSBT, index: int, *, only: Collection[bytes] | None = None
) -> dict[bytes, bool]:
    """For every signature on input ``index``'s leaf (by a key in ``only`` if given):
    x-only key -> whether it is valid,
    each over the digest of the hash type it declares (arkd's ``CalcTapscriptSignaturehash``
    with the signature's own type: every BIP341 type is accepted, a signature whose type
    has no digest is not valid)."""
    _, script = spend_leaf(psbt, index)
    leaf = leaf_hash(script)
    tx, spent = psbt.tx.serialize(), witness_prevouts(psbt)
    digests: dict[int, bytes | None] = {}
    result: dict[bytes, bool] = {}
    for (pub, sig_leaf), signature in psbt.inputs[index].taproot_sigs.items():
        if sig_leaf != leaf:
            continue
        xonly = pub.xonly()
        if only is not None and xonly not in only:
            continue
        try:
            hash_type = signature_hash_type(signature)
        except ArkTxError:
            result[xonly] = False
            continue
        if hash_type not in digests:
            try:
                digests[hash_type] = leaf_sighash(tx, index, spent, script, hash_type)
            except SighashRefused:
                digests[hash_type] = None
        digest = digests[hash_type]
        result[xonly] = digest is not None and bip340.schnorr_verify(xonly, digest, signature[:64])
    return result


def sub_dust_script(output_key: bytes) -> bytes:
    """``OP_RETURN <output key>``: arkd's form of an output below dust (ark-lib SubDustScript)."""
    if len(output_key) != 32:
        raise ArkTxError("a sub-dust output commits to a 32-byte output key")
    return _SUB_DUST_PREFIX + output_key


def sub_dust_key(script: bytes) -> bytes | None:
    """The output key of a sub-dust script, else None.

    As ark-lib's IsSubDustScript: OP_RETURN whose first push is 32 bytes, in any push form,
    whatever follows it.
    """
    if len(script) < 2 or script[0] != OP_RETURN:
        return None
    op, start = script[1], 2
    if op in _PUSHDATA_WIDTH:
        start += _PUSHDATA_WIDTH[op]
        if len(script) < start:
            return None
        op = int.from_bytes(script[2:start], "little")
    elif op > 0x4B:
        return None
    key = script[start : start + op]
    return key if op == 32 and len(key) == 32 else None


def vtxo_outputs(psbt: PSBT) -> Iterable[VtxoOutput]:
    """The outputs arkd turns into VTXOs when it finalizes the ark tx.

    Like arkd's projection of a finalized offchain tx: the anchor is not a VTXO, and only
    34-byte scripts are, i.e. P2TR outputs and sub-dust outputs in their canonical
    ``OP_RETURN OP_DATA_32`` form.
    """
    for i, out in enumerate(psbt.tx.vout):
        script = out.script_pubkey.data
        if len(script) != 34:
            continue
        if script.startswith(_P2TR_PREFIX):
            yield VtxoOutput(i, script, out.value, sub_dust=False)
        elif script.startswith(_SUB_DUST_PREFIX):
            yield VtxoOutput(i, _P2TR_PREFIX + script[2:], out.value, sub_dust=True)
