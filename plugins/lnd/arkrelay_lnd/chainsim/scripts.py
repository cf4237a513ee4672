"""Input script verification for the outputs the simulated chain pays: p2wpkh, p2wsh,
taproot key path and script path, pay-to-anchor.

Sighashes are embit's for segwit v0 (BIP 143) and ``sighash.py``'s for taproot (BIP 341,
every hash type; embit's is wrong for SINGLE and ANYONECANPAY); signatures are checked by
libsecp256k1 through coincurve (ECDSA, BIP 340). Scripts run in a small interpreter that
knows the opcodes Ark's tapscripts are made of (signature checks including
OP_CHECKSIGADD, OP_CHECKSEQUENCEVERIFY, OP_CHECKLOCKTIMEVERIFY, hash locks, OP_DROP,
OP_VERIFY, equality); any other opcode is refused as not modelled, never assumed to pass.
Error texts are bitcoind's (script/script_error.cpp).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from coincurve import PublicKey, PublicKeyXOnly
from embit import hashes
from embit.script import Script
from embit.transaction import Transaction, TransactionOutput

from .errors import ScriptFailure
from .outputs import P2A_SCRIPT, iter_ops, witness_program
from .sighash import taproot_sighash

__all__ = [
    "LOCKTIME_THRESHOLD",
    "SEQUENCE_DISABLE",
    "SEQUENCE_FINAL",
    "SEQUENCE_MASK",
    "SEQUENCE_TYPE_TIME",
    "TAPSCRIPT_LEAF",
    "control_block_commits",
    "taproot_output_key",
    "verify_input",
]

SEQUENCE_FINAL = 0xFFFFFFFF
#: BIP 68 fields of nSequence.
SEQUENCE_DISABLE = 1 << 31
SEQUENCE_TYPE_TIME = 1 << 22
SEQUENCE_MASK = 0xFFFF
#: nLockTime below this is a height, from it a time (script/script.h).
LOCKTIME_THRESHOLD = 500_000_000
TAPSCRIPT_LEAF = 0xC0
_MAX_ELEMENT = 520
_SIGHASH_TYPES = {0x01, 0x02, 0x03, 0x81, 0x82, 0x83}
_SIGHASH_SINGLE = 0x03

# script/script_error.cpp texts.
EVAL_FALSE = "Script evaluated without error but finished with a false/empty top stack element"
CLEANSTACK = "Stack size must be exactly one after execution"
STACK_OP = "Operation not valid with the current stack size"
PROGRAM_MISMATCH = "Witness program hash mismatch"
UNSATISFIED_LOCKTIME = "Locktime requirement not satisfied"
SCHNORR_SIG = "Invalid Schnorr signature"


def verify_input(tx: Transaction, index: int, spent: list[TransactionOutput]) -> None:
    """Check input ``index`` of ``tx`` against the output it spends; ``spent`` holds the
    output spent by every input (BIP 341 signs them all). Raises ScriptFailure."""
    inp = tx.vin[index]
    script = spent[index].script_pubkey.data
    program = witness_program(script)
    if program is None:
        raise ScriptFailure(
            "spends of non-segwit outputs are not modelled by the simulator", mandatory=False
        )
    if inp.script_sig.data:
        raise ScriptFailure("Witness requires empty scriptSig")
    witness = list(inp.witness.items)
    version, data = program
    if version == 0 and len(data) == 20:
        _p2wpkh(tx, index, spent[index].value, data, witness)
    elif version == 0 and len(data) == 32:
        _p2wsh(tx, index, spent[index].value, data, witness)
    elif version == 0:
        raise ScriptFailure("Witness program has incorrect length")
    elif version == 1 and len(data) == 32:
        _taproot(tx, index, spent, data, witness)
    elif script == P2A_SCRIPT:
        if witness:
            raise ScriptFailure("Witness provided for non-witness script", mandatory=False)
    else:
        raise ScriptFailure("Witness version reserved for soft-fork upgrades", mandatory=False)


# ---------------------------------------------------------------------------- segwit v0


def _p2wpkh(tx: Transaction, index: int, value: int, keyhash: bytes, witness: list[bytes]) -> None:
    if len(witness) != 2 or hashes.hash160(witness[1]) != keyhash:
        raise ScriptFailure(PROGRAM_MISMATCH)
    sig, pub = witness
    if len(pub) != 33:
        raise ScriptFailure("Using non-compressed keys in segwit", mandatory=False)
    code = Script(b"\x76\xa9\x14" + keyhash + b"\x88\xac")
    if not _ecdsa(tx, index, value, code, sig, pub):
        raise ScriptFailure(EVAL_FALSE)


def _p2wsh(tx: Transaction, index: int, value: int, digest: bytes, witness: list[bytes]) -> None:
    if not witness:
        raise ScriptFailure("Witness program was passed an empty witness")
    script = witness[-1]
    if hashlib.sha256(script).digest() != digest:
        raise ScriptFailure(PROGRAM_MISMATCH)

    def check(sig: bytes, pub: bytes) -> bool:
        return _ecdsa(tx, index, value, Script(script), sig, pub)

    _Machine(tx, index, check, tapscript=False).run(script, witness[:-1])


def _ecdsa(tx: Transaction, index: int, value: int, code: Script, sig: bytes, pub: bytes) -> bool:
    if not sig:
        return False
    if sig[-1] not in _SIGHASH_TYPES:
        raise ScriptFailure("Signature hash type missing or not understood", mandatory=False)
    digest = tx.sighash_segwit(index, code, value, sighash=sig[-1])
    try:
        return PublicKey(pub).verify(sig[:-1], digest, hasher=None)
    except ValueError:  # not a point, or not strict DER: bitcoind's checks fail the same
        return False


# ---------------------------------------------------------------------------- taproot


def taproot_output_key(internal: bytes, merkle_root: bytes) -> tuple[bytes, bool]:
    """(x-only output key, odd) of ``internal`` tweaked by ``merkle_root`` (BIP 341)."""
    tweak = hashes.tagged_hash("TapTweak", internal + merkle_root)
    key = PublicKeyXOnly(internal)
    key.tweak_add(tweak)
    return key.format(), key.parity


def control_block_commits(output_key: bytes, script: bytes, control: bytes) -> bool:
    """Whether ``control`` proves ``script`` is a leaf of the taproot output ``output_key``
    (BIP 341): the leaf hash folded with the path gives the merkle root, and the internal
    key tweaked by it is the output key, with the control block's parity."""
    node = hashes.tagged_hash("TapLeaf", bytes([control[0] & 0xFE]) + Script(script).serialize())
    for at in range(33, len(control), 32):
        sibling = control[at : at + 32]
        node = hashes.tagged_hash("TapBranch", min(node, sibling) + max(node, sibling))
    try:
        key, odd = taproot_output_key(control[1:33], node)
    except ValueError:  # the internal key is not a point, or the tweak overflows
        return False
    return key == output_key and odd == bool(control[0] & 1)


def _taproot(
    tx: Transaction,
    index: int,
    spent: list[TransactionOutput],
    output_key: bytes,
    witness: list[bytes],
) -> None:
    if not witness:
        raise ScriptFailure("Witness program was passed an empty witness")
    if len(witness) >= 2 and witness[-1][:1] == b"\x50":
        raise ScriptFailure("annexes are not relayed (bad-witness-nonstandard)", mandatory=False)
    if len(witness) == 1:
        digest = _schnorr_digest(tx, index, spent, witness[0], None)
        if not _schnorr_valid(output_key, witness[0][:64], digest):
            raise ScriptFailure(SCHNORR_SIG)
        return
    control, script = witness[-1], witness[-2]
    if len(control) < 33 or (len(control) - 33) % 32 or len(control) > 33 + 128 * 32:
        raise ScriptFailure("Invalid Taproot control block size")
    if not control_block_commits(output_key, script, control):
        raise ScriptFailure(PROGRAM_MISMATCH)
    if control[0] & 0xFE != TAPSCRIPT_LEAF:
        raise ScriptFailure("Taproot version reserved for soft-fork upgrades", mandatory=False)

    def check(sig: bytes, pub: bytes) -> bool:
        if not sig:
            return False
        if len(pub) != 32:
            raise ScriptFailure(
                "Public key version reserved for soft-fork upgrades", mandatory=False
            )
        digest = _schnorr_digest(tx, index, spent, sig, script)
        if not _schnorr_valid(pub, sig[:64], digest):
            raise ScriptFailure(SCHNORR_SIG)
        return True

    _Machine(tx, index, check, tapscript=True).run(script, witness[:-2])


def _schnorr_valid(key: bytes, sig: bytes, digest: bytes) -> bool:
    try:
        return PublicKeyXOnly(key).verify(sig, digest)
    except ValueError:  # not a point on the curve: no signature can be valid for it
        return False


def _schnorr_digest(
    tx: Transaction,
    index: int,
    spent: list[TransactionOutput],
    sig: bytes,
    leaf: bytes | None,
) -> bytes:
    """The BIP 341 message ``sig`` signs (64 bytes: SIGHASH_DEFAULT; 65: its last byte)."""
    if len(sig) == 64:
        hash_type = 0
    elif len(sig) == 65 and sig[64] in _SIGHASH_TYPES:
        hash_type = sig[64]
    elif len(sig) == 65:
        raise ScriptFailure("Invalid Schnorr signature hash type")
    else:
        raise ScriptFailure("Invalid Schnorr signature size")
    if hash_type & 0x03 == _SIGHASH_SINGLE and index >= len(tx.vout):
        raise ScriptFailure("Invalid Schnorr signature hash type")
    return taproot_sighash(tx, index, spent, hash_type, leaf=leaf)


# ---------------------------------------------------------------------------- interpreter


def _num(data: bytes, limit: int = 4) -> int:
    if len(data) > limit:
        raise ScriptFailure("Script number overflow")
    if not data:
        return 0
    value = int.from_bytes(data, "little") & ~(0x80 << 8 * (len(data) - 1))
    return -value if data[-1] & 0x80 else value


def _encode(n: int) -> bytes:
    if n == 0:
        return b""
    out = bytearray(abs(n).to_bytes((abs(n).bit_length() + 8) // 8, "little"))
    while len(out) > 1 and out[-1] == 0 and not out[-2] & 0x80:
        out.pop()
    if n < 0:
        out[-1] |= 0x80
    return bytes(out)


def _true(data: bytes) -> bool:
    return any(data[:-1]) or (bool(data) and data[-1] not in (0, 0x80))


#: Opcodes that make a tapscript succeed unconditionally (BIP 342), refused as policy.
_OP_SUCCESS = {
    0x50, 0x62, 0x7E, 0x7F, 0x80, 0x81, 0x83, 0x84, 0x85, 0x86, 0x89, 0x8A, 0x8D, 0x8E,
    *range(0x95, 0x9A), *range(0xBB, 0xFF),
}  # fmt: skip

_NAMES = {0xAE: "OP_CHECKMULTISIG", 0xAF: "OP_CHECKMULTISIGVERIFY", 0x63: "OP_IF"}


@dataclass
class _Machine:
    tx: Transaction
    index: int
    check_sig: Callable[[bytes, bytes], bool]
    tapscript: bool

    def run(self, script: bytes, stack: list[bytes]) -> None:
        try:
            ops = iter_ops(script)
        except ValueError:
            raise ScriptFailure("Invalid OP_PUSHDATA size") from None
        if self.tapscript and any(op in _OP_SUCCESS for op, data in ops if data is None):
            raise ScriptFailure("OP_SUCCESSx reserved for soft-fork upgrades", mandatory=False)
        if any(len(item) > _MAX_ELEMENT for item in stack):
            raise ScriptFailure("Push value size limit exceeded")
        stack = list(stack)
        for op, data in ops:
            if data is not None:
                if len(data) > _MAX_ELEMENT:
                    raise ScriptFailure("Push value size limit exceeded")
                stack.append(data)
            elif op == 0x4F or 0x51 <= op <= 0x60:
                stack.append(_encode(-1 if op == 0x4F else op - 0x50))
            else:
                self._step(op, stack)
        if len(stack) != 1:
            raise ScriptFailure(CLEANSTACK if stack else EVAL_FALSE)
        if not _true(stack[0]):
            raise ScriptFailure(EVAL_FALSE)

    def _pop(self, stack: list[bytes], n: int = 1) -> list[bytes]:
        if len(stack) < n:
            raise ScriptFailure(STACK_OP)
        taken = stack[-n:]
        del stack[-n:]
        return taken

    def _step(self, op: int, stack: list[bytes]) -> None:
        if op in (0xAC, 0xAD):  # OP_CHECKSIG, OP_CHECKSIGVERIFY
            sig, pub = self._pop(stack, 2)
            if not pub and self.tapscript:
                raise ScriptFailure("Public key is neither compressed or uncompressed")
            ok = self.check_sig(sig, pub)
            if op == 0xAD:
                if not ok:
                    raise ScriptFailure("Script failed an OP_CHECKSIGVERIFY operation")
            else:
                stack.append(b"\x01" if ok else b"")
        elif op == 0xBA and self.tapscript:  # OP_CHECKSIGADD
            sig, n, pub = self._pop(stack, 3)
            if not pub:
                raise ScriptFailure("Public key is neither compressed or uncompressed")
            stack.append(_encode(_num(n) + int(self.check_sig(sig, pub))))
        elif op in (0xB1, 0xB2):  # OP_CHECKLOCKTIMEVERIFY, OP_CHECKSEQUENCEVERIFY
            if not stack:
                raise ScriptFailure(STACK_OP)
            n = _num(stack[-1], 5)
            if n < 0:
                raise ScriptFailure("Negative locktime")
            if not (self._locktime_ok(n) if op == 0xB1 else self._sequence_ok(n)):
                raise ScriptFailure(UNSATISFIED_LOCKTIME)
        elif op == 0x75:  # OP_DROP
            self._pop(stack)
        elif op == 0x76:  # OP_DUP
            stack.append(self._pop(stack)[0])
            stack.append(stack[-1])
        elif op == 0x82:  # OP_SIZE
            if not stack:
                raise ScriptFailure(STACK_OP)
            stack.append(_encode(len(stack[-1])))
        elif op == 0x69:  # OP_VERIFY
            if not _true(self._pop(stack)[0]):
                raise ScriptFailure("Script failed an OP_VERIFY operation")
        elif op in (0x87, 0x88):  # OP_EQUAL, OP_EQUALVERIFY
            a, b = self._pop(stack, 2)
            if op == 0x88 and a != b:
                raise ScriptFailure("Script failed an OP_EQUALVERIFY operation")
            if op == 0x87:
                stack.append(b"\x01" if a == b else b"")
        elif op in (0x9C, 0x9D):  # OP_NUMEQUAL, OP_NUMEQUALVERIFY
            a, b = (_num(x) for x in self._pop(stack, 2))
            if op == 0x9D and a != b:
                raise ScriptFailure("Script failed an OP_NUMEQUALVERIFY operation")
            if op == 0x9C:
                stack.append(b"\x01" if a == b else b"")
        elif op in (0xA8, 0xA9, 0xAA):  # OP_SHA256, OP_HASH160, OP_HASH256
            item = self._pop(stack)[0]
            hasher = {0xA8: hashes.sha256, 0xA9: hashes.hash160, 0xAA: hashes.double_sha256}
            stack.append(hasher[op](item))
        elif op in (0xAE, 0xAF) and self.tapscript:
            raise ScriptFailure("OP_CHECKMULTISIG(VERIFY) is not available in tapscript")
        elif op == 0xBA:
            raise ScriptFailure("Opcode missing or not understood")
        else:
            name = _NAMES.get(op, f"opcode {op:#04x}")
            raise ScriptFailure(f"{name} is not modelled by the simulator", mandatory=False)

    def _locktime_ok(self, n: int) -> bool:
        """BIP 65: the transaction's nLockTime is of ``n``'s kind, at least ``n``, and in
        force (this input's sequence is not final)."""
        locktime = self.tx.locktime
        if (n < LOCKTIME_THRESHOLD) != (locktime < LOCKTIME_THRESHOLD):
            return False
        return n <= locktime and self.tx.vin[self.index].sequence != SEQUENCE_FINAL

    def _sequence_ok(self, n: int) -> bool:
        """BIP 112: this input's nSequence is a relative lock of ``n``'s kind, at least
        ``n`` (BIP 68 then holds the transaction until that has passed)."""
        if n & SEQUENCE_DISABLE:
            return True
        sequence = self.tx.vin[self.index].sequence
        if self.tx.version < 2 or sequence & SEQUENCE_DISABLE:
            return False
        kind = SEQUENCE_TYPE_TIME
        if (n & kind) != (sequence & kind):
            return False
        return (n & SEQUENCE_MASK) <= (sequence & SEQUENCE_MASK)
