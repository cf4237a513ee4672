"""arkd v0.9.15's intent-proof verification, rule for rule (docs/simulators.md, "Ownership
proofs (intents)").

``verify`` mirrors ark-lib ``intent.Verify`` (pkg/ark-lib/intent/proof.go) and the
``script.VerifyTapscriptSigs`` it calls (pkg/ark-lib/script/verify.go); its refusals carry
the same texts, so arkd's own fixtures (pkg/ark-lib/intent/testdata/verify_fixtures.json)
check it. ``decode_get_pending_tx`` mirrors the handler's message parsing and the re-encoding
the service signs against (intent/message.go, grpc/handlers/parser.go).

One deliberate limit: arkd runs a condition closure's condition in a script engine; the
simulator evaluates hash locks only (``OP_SHA256|OP_HASH160|OP_HASH256|OP_RIPEMD160 <h>
OP_EQUAL`` with a one-item witness) and refuses any other condition as unsupported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from typing import Any

import coincurve
from embit.hashes import tagged_hash
from embit.script import Script
from embit.transaction import TransactionError

from arkrelay_core.nostr import bip340

from .. import arktx
from ..intentproof import GET_PENDING_TX, ProofPSBT, decode_proof, prevouts, to_spend_tx
from ..tapscript import NUMS_XONLY, _read_int, leaf_hash, multisig_keys

__all__ = [
    "ProofRefused",
    "check_control_block",
    "declares_no_inputs",
    "decode_get_pending_tx",
    "encode_get_pending_tx",
    "parse",
    "verify",
]

CONDITION_FIELD_KEY = b"\xde" + b"condition"
OP_CHECKSIG, OP_CHECKSIGADD, OP_NUMEQUAL, OP_VERIFY, OP_EQUAL = 0xAC, 0xBA, 0x9C, 0x69, 0x87
OP_CSV, OP_CLTV, OP_DROP = 0xB2, 0xB1, 0x75
OP_SHA256 = 0xA8
_HASH_OPS = {
    0xA6: lambda b: hashlib.new("ripemd160", b).digest(),
    OP_SHA256: lambda b: hashlib.sha256(b).digest(),
    0xA9: lambda b: hashlib.new("ripemd160", hashlib.sha256(b).digest()).digest(),
    0xAA: lambda b: hashlib.sha256(hashlib.sha256(b).digest()).digest(),
}
#: BIP341's valid hash types; btcd refuses any other ("invalid taproot sighash type").
_TAPROOT_SIGHASHES = frozenset({0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83})


class ProofRefused(ValueError):
    """An intent proof arkd would refuse; the text is arkd's."""


# ------------------------------------------------------------------------- messages


def decode_get_pending_tx(message: str) -> int:
    """The ``expire_at`` of a ``get-pending-tx`` message, read as Go's encoding/json reads it
    into GetPendingTxMessage: keys matched case-insensitively, unknown keys ignored, the last
    of duplicates winning, ``null`` leaving a field zero, ``expire_at`` an int64 literal."""
    try:
        doc = json.loads(message, object_pairs_hook=list, parse_float=_no_float, parse_int=int)
    except (ValueError, _NotInt) as exc:
        raise ProofRefused("invalid get-pending-tx intent message") from exc
    kind, expire_at = "", 0
    if doc is not None:
        if not isinstance(doc, list):
            raise ProofRefused("invalid get-pending-tx intent message")
        for key, value in doc:
            folded = key.casefold()
            if folded == "type" and value is not None:
                if not isinstance(value, str):
                    raise ProofRefused("invalid get-pending-tx intent message")
                kind = value
            elif folded == "expire_at" and value is not None:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ProofRefused("invalid get-pending-tx intent message")
                if not -(2**63) <= value < 2**63:
                    raise ProofRefused("invalid get-pending-tx intent message")
                expire_at = value
    if kind != GET_PENDING_TX:
        raise ProofRefused("invalid get-pending-tx intent message")
    return expire_at


def encode_get_pending_tx(expire_at: int) -> str:
    """What arkd verifies the proof against: the message re-encoded (Go field order)."""
    return json.dumps({"type": GET_PENDING_TX, "expire_at": expire_at}, separators=(",", ":"))


class _NotInt(ValueError):
    pass


def _no_float(literal: str) -> Any:
    raise _NotInt(literal)


# ------------------------------------------------------------------------- the proof


def parse(proof_b64: str) -> ProofPSBT:
    """Parse like btcd's ``psbt.NewFromRawBytes``; a tx with no inputs parses there (and is
    refused later for its input count) while embit reads it as segwit and fails."""
    try:
        return decode_proof(proof_b64)
    except arktx.ArkTxError as exc:
        if declares_no_inputs(proof_b64):
            raise ProofRefused("invalid intent proof: expected at least 2 inputs") from exc
        raise ProofRefused(f"failed to parse proof tx: {exc}") from exc


def verify(proof_b64: str, message: str, skip: Iterable[bytes] = ()) -> None:
    """ark-lib ``intent.Verify``: raise ProofRefused with arkd's reason, or return."""
    psbt = parse(proof_b64)
    if len(psbt.inputs) < 2:
        raise ProofRefused("invalid intent proof: expected at least 2 inputs")
    if len(psbt.outputs) == 0:
        raise ProofRefused("invalid intent proof: expected at least 1 output")
    for i, inp in enumerate(psbt.inputs):
        if inp.witness_utxo is None:
            raise ProofRefused(f"missing witness utxo on input #{i}")
    second = prevouts(psbt)[1]
    to_spend = to_spend_tx(message, second[0])
    first = psbt.inputs[0]
    if first.txid != to_spend.txid():
        raise ProofRefused("invalid intent proof: wrong tx hash in message input")
    if first.vout != 0:
        raise ProofRefused("invalid intent proof: wrong output index in message input")
    spent = prevouts(psbt, to_spend)
    try:
        _verify_tapscript_sigs(psbt, spent, {bytes(k) for k in skip})
    except ProofRefused as exc:
        raise ProofRefused(f"invalid intent proof: {exc}") from exc
    for i in range(1, len(psbt.inputs)):
        leaves = psbt.inputs[i].taproot_scripts
        if len(leaves) != 1:
            raise ProofRefused(f"malformed input {i}: missing TaprootLeafScript")
        control, value = next(iter(leaves.items()))
        if _is_note(value[:-1]):
            try:
                _verify_note(psbt, i, spent, control, value[:-1])
            except ProofRefused as exc:
                raise ProofRefused(f"invalid intent proof: {exc}") from exc


def _verify_tapscript_sigs(
    psbt: ProofPSBT, spent: list[tuple[bytes, int]], skip: set[bytes]
) -> None:
    is_intent = psbt.tx.version == 2 and len(psbt.inputs) >= 2 and spent[0][0] == spent[1][0]
    for index, inp in enumerate(psbt.inputs):
        if len(inp.taproot_scripts) != 1:
            continue
        pk_script = spent[index][0]
        if not (len(pk_script) == 34 and pk_script[:2] == b"\x51\x20"):
            continue
        control, value = next(iter(inp.taproot_scripts.items()))
        script = value[:-1]
        if _is_note(script):
            continue
        keys, condition = _decode_closure(script)
        if condition is not None and not (index == 0 and is_intent):
            _check_condition(psbt, index, condition)
        expected = dict.fromkeys(keys, False)
        check_control_block(index, control, script, pk_script)
        if not inp.taproot_sigs:
            if any(k not in skip for k in expected):
                raise ProofRefused(f"input {index} has no tapscript signatures")
            continue
        leaf = leaf_hash(script)
        outpoint = arktx.input_outpoint(psbt, index)
        for n, ((pub, sig_leaf), raw) in enumerate(inp.taproot_sigs.items()):
            if sig_leaf != leaf:
                raise ProofRefused(
                    f"invalid leaf hash for tapscript sig {n} of input {index}: "
                    f"expected {leaf.hex()}, got {sig_leaf.hex()}"
                )
            sighash_type = raw[64] if len(raw) == 65 else 0
            if sighash_type not in _TAPROOT_SIGHASHES:
                raise ProofRefused(
                    f"failed to compute hash for signature {n} of input {index}: "
                    "invalid taproot sighash type"
                )
            if len(raw) not in (64, 65):
                raise ProofRefused(f"failed to parse signature {n} for input {index}")
            try:
                digest = psbt.tx.sighash_taproot(
                    index,
                    script_pubkeys=[Script(s) for s, _ in spent],
                    values=[v for _, v in spent],
                    sighash=sighash_type,
                    ext_flag=1,
                    script=Script(script),
                    leaf_version=0xC0,
                )
            except (TransactionError, ValueError, IndexError) as exc:
                raise ProofRefused(
                    f"failed to compute hash for signature {n} of input {index}: {exc}"
                ) from exc
            xonly = pub.xonly()
            if not bip340.schnorr_verify(xonly, digest, raw[:64]):
                raise ProofRefused(f"invalid sig {n} for input {index} with prevout {outpoint}")
            expected[xonly] = True
        for key, signed in expected.items():
            if key not in skip and not signed:
                raise ProofRefused(f"missing signature for {key.hex()}")


def check_control_block(
    index: int, control: bytes, script: bytes, pk_script: bytes, *, note: bool = False
) -> None:
    if len(control) < 33 or len(control) > 33 + 32 * 128 or (len(control) - 33) % 32:
        raise ProofRefused(f"failed to parse control block for input {index}")
    # btcd recomputes the root with the control block's own leaf version, and the key
    # with the NUMS point whatever internal key the control block names.
    version = control[0] & 0xFE
    node = tagged_hash("TapLeaf", bytes([version]) + _compact(len(script)) + script)
    for pos in range(33, len(control), 32):
        sibling = control[pos : pos + 32]
        node = tagged_hash("TapBranch", min(node, sibling) + max(node, sibling))
    tweak = tagged_hash("TapTweak", NUMS_XONLY + node)
    tweaked = coincurve.PublicKey(b"\x02" + NUMS_XONLY).add(tweak).format()
    if note and tweaked[1:] != pk_script[2:]:
        raise ProofRefused(f"invalid control block for note input {index}")
    if tweaked[1:] != pk_script[2:]:
        raise ProofRefused(
            f"invalid control block for input {index}: expected tapkey {pk_script[2:].hex()} "
            f"(from prevout), got {tweaked[1:].hex()} (computed)"
        )
    odd = tweaked[0] == 0x03
    if note and bool(control[0] & 1) != odd:
        raise ProofRefused(f"invalid control block parity for note input {index}")
    if bool(control[0] & 1) != odd:
        raise ProofRefused(
            f"invalid control block parity for input {index}: expected odd={str(odd).lower()}, "
            f"got odd={str(bool(control[0] & 1)).lower()}"
        )


def _compact(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    return b"\xfd" + n.to_bytes(2, "little")


# ------------------------------------------------------------------------- closures


def _decode_closure(script: bytes) -> tuple[list[bytes], bytes | None]:
    """(keys, condition) of an ark-lib closure, tried in DecodeClosure's order: CSV
    multisig, CLTV multisig, multisig, condition multisig, condition CSV multisig."""
    if not script:
        raise ProofRefused("cannot decode empty script")
    for opcode in (OP_CSV, OP_CLTV):
        keys = _locked_multisig(script, opcode)
        if keys is not None:
            return keys, None
    keys = _multisig(script)
    if keys is not None:
        return keys, None
    for pos in range(len(script)):
        if script[pos] != OP_VERIFY or pos == 0:
            continue
        condition, rest = script[:pos], script[pos + 1 :]
        keys = _multisig(rest)
        if keys is None:
            keys = _locked_multisig(rest, OP_CSV)
        if keys is not None and _pushes_parse(condition):
            return keys, condition
    raise ProofRefused(f"script does not match any known closure type: {script.hex()}")


def _multisig(script: bytes) -> list[bytes] | None:
    keys = multisig_keys(script)
    if keys is not None:
        return keys
    # CHECKSIGADD form: <k1> CHECKSIG <k2> CHECKSIGADD ... <n> NUMEQUAL
    keys, pos = [], 0
    while pos + 34 <= len(script) and script[pos] == 32:
        keys.append(script[pos + 1 : pos + 33])
        op = script[pos + 33]
        if op != (OP_CHECKSIG if len(keys) == 1 else OP_CHECKSIGADD):
            return None
        pos += 34
    if not keys or len(keys) > 16 or script[pos:] != bytes([0x50 + len(keys), OP_NUMEQUAL]):
        return None
    return keys


def _locked_multisig(script: bytes, opcode: int) -> list[bytes] | None:
    read = _read_int(script, 0)
    if read is None:
        return None
    _, pos = read
    if script[pos : pos + 2] != bytes([opcode, OP_DROP]):
        return None
    return _multisig(script[pos + 2 :])


def _pushes_parse(script: bytes) -> bool:
    pos = 0
    while pos < len(script):
        op = script[pos]
        pos += 1 + (op if 1 <= op <= 75 else 0)
    return pos == len(script)


def _is_note(script: bytes) -> bool:
    return (
        len(script) == 35 and script[0] == OP_SHA256 and script[1] == 32 and script[34] == OP_EQUAL
    )


def _condition_witness(psbt: ProofPSBT, index: int) -> list[bytes]:
    raw = psbt.inputs[index].unknown.get(CONDITION_FIELD_KEY)
    if raw is None:
        return []
    items, pos = [], 0
    count, pos = _read_compact(raw, pos)
    for _ in range(count):
        size, pos = _read_compact(raw, pos)
        if pos + size > len(raw):
            raise ProofRefused(f"input {index}: truncated condition witness")
        items.append(raw[pos : pos + size])
        pos += size
    return items


def _read_compact(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise ProofRefused("truncated condition witness")
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(data[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


def _check_condition(psbt: ProofPSBT, index: int, condition: bytes) -> None:
    hashed = _HASH_OPS.get(condition[0]) if condition else None
    size = condition[1] if len(condition) > 2 else 0
    if hashed is None or len(condition) != size + 3 or condition[-1] != OP_EQUAL:
        raise ProofRefused(
            f"input {index}: the simulator evaluates hash-lock conditions only, "
            f"not {condition.hex()}"
        )
    witness = _condition_witness(psbt, index)
    if len(witness) != 1:
        raise ProofRefused(f"input {index}: the simulator expects a one-item condition witness")
    if hashed(witness[0]) != condition[2 : 2 + size]:
        raise ProofRefused(f"condition not met for input {index}")


def _verify_note(
    psbt: ProofPSBT, index: int, spent: list[tuple[bytes, int]], control: bytes, script: bytes
) -> None:
    check_control_block(index, control, script, spent[index][0], note=True)
    witness = _condition_witness(psbt, index)
    if not witness or not witness[0]:
        raise ProofRefused(f"missing preimage for note input {index}")
    if hashlib.sha256(witness[0]).digest() != script[2:34]:
        raise ProofRefused(f"invalid preimage for note input {index}")


def declares_no_inputs(proof_b64: str) -> bool:
    try:
        raw = base64.b64decode(proof_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    # magic, then the first global: key length 1, key 0x00, value length, tx version (4).
    if raw[:5] != b"psbt\xff" or raw[5:7] != b"\x01\x00":
        return False
    _, pos = _read_compact(raw, 7)
    return len(raw) > pos + 4 and raw[pos + 4] == 0
