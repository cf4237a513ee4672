"""BIP 341 signature messages: the digest a taproot signature signs, key path or tapscript
(BIP 342), for every hash type.

Our own rather than embit's: embit 0.8's ``Transaction.sighash_taproot`` hashes an
ANYONECANPAY input as its whole serialization (BIP 341 commits to its outpoint, amount,
scriptPubKey and sequence) and puts SIGHASH_SINGLE's output in unhashed, so its digests
for those five types are not BIP 341's. BIP 341's own wallet test vectors pin this module
for all seven types (tests/bitcoin/test_bip341_sighash.py).

Values in, bytes out: the transaction in its consensus serialization, and the output each
input spends as (scriptPubKey, amount), so every plugin can use it whatever it builds
transactions with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ._wire import WireError, compact_size, read_tx

__all__ = [
    "SIGHASH_ALL",
    "SIGHASH_ANYONECANPAY",
    "SIGHASH_DEFAULT",
    "SIGHASH_NONE",
    "SIGHASH_SINGLE",
    "TAPROOT_SIGHASH_TYPES",
    "TAPSCRIPT_LEAF_VERSION",
    "InvalidHashType",
    "SighashError",
    "SingleWithoutOutput",
    "tagged_hash",
    "taproot_sig_message",
    "taproot_sighash",
]

SIGHASH_DEFAULT = 0x00
SIGHASH_ALL = 0x01
SIGHASH_NONE = 0x02
SIGHASH_SINGLE = 0x03
SIGHASH_ANYONECANPAY = 0x80
#: The hash types BIP 341 defines; any other makes the signature invalid.
TAPROOT_SIGHASH_TYPES = frozenset({0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83})
TAPSCRIPT_LEAF_VERSION = 0xC0
_NO_CODESEPARATOR = 0xFFFFFFFF


class SighashError(ValueError):
    """No BIP 341 digest exists for these arguments."""


class InvalidHashType(SighashError):
    """The hash type is none of BIP 341's."""

    def __init__(self, hash_type: int) -> None:
        super().__init__(f"hash type {hash_type:#04x} is not a taproot hash type")
        self.hash_type = hash_type


class SingleWithoutOutput(SighashError):
    """SIGHASH_SINGLE on an input with no output at its index."""

    def __init__(self, index: int, outputs: int) -> None:
        super().__init__(f"SIGHASH_SINGLE on input {index}, but the tx has {outputs} outputs")
        self.index, self.outputs = index, outputs


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP 340's tagged hash."""
    tag_digest = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(tag_digest + tag_digest + data).digest()


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def taproot_sig_message(
    tx: bytes,
    index: int,
    spent: Sequence[tuple[bytes, int]],
    hash_type: int,
    *,
    leaf: bytes | None = None,
    leaf_version: int = TAPSCRIPT_LEAF_VERSION,
    annex: bytes | None = None,
    codesep_pos: int = _NO_CODESEPARATOR,
) -> bytes:
    """BIP 341's SigMsg with its epoch byte in front, i.e. what ``TapSighash`` hashes.

    ``tx`` is the spending transaction serialized (witnesses, if any, are ignored);
    ``spent[i]`` is (scriptPubKey, amount in sats) of the output input ``i`` spends;
    ``leaf`` is the tapscript for a script-path signature (None: key path), ``annex`` the
    witness annex including its 0x50 prefix.
    """
    if hash_type not in TAPROOT_SIGHASH_TYPES:
        raise InvalidHashType(hash_type)
    try:
        wire = read_tx(tx)
    except WireError as exc:
        raise SighashError(f"malformed transaction: {exc}") from exc
    if not 0 <= index < len(wire.outpoints):
        raise SighashError(f"input {index} out of range: the tx has {len(wire.outpoints)}")
    if len(spent) != len(wire.outpoints):
        raise SighashError(f"{len(spent)} spent outputs for {len(wire.outpoints)} inputs")
    outputs_kind = hash_type & 0x03
    anyone = bool(hash_type & SIGHASH_ANYONECANPAY)
    if outputs_kind == SIGHASH_SINGLE and index >= len(wire.outputs):
        raise SingleWithoutOutput(index, len(wire.outputs))

    def txout(script: bytes, amount: int) -> bytes:
        return amount.to_bytes(8, "little") + compact_size(len(script)) + script

    msg = bytearray([0x00, hash_type])  # epoch 0
    msg += wire.version + wire.locktime
    if not anyone:
        msg += _sha(b"".join(wire.outpoints))
        msg += _sha(b"".join(amount.to_bytes(8, "little") for _, amount in spent))
        msg += _sha(b"".join(compact_size(len(s)) + s for s, _ in spent))
        msg += _sha(b"".join(wire.sequences))
    if outputs_kind not in (SIGHASH_NONE, SIGHASH_SINGLE):
        msg += _sha(b"".join(wire.outputs))
    msg.append((2 if leaf is not None else 0) + (1 if annex is not None else 0))
    if anyone:
        msg += wire.outpoints[index] + txout(*spent[index]) + wire.sequences[index]
    else:
        msg += index.to_bytes(4, "little")
    if annex is not None:
        msg += _sha(compact_size(len(annex)) + annex)
    if outputs_kind == SIGHASH_SINGLE:
        msg += _sha(wire.outputs[index])
    if leaf is not None:
        msg += tagged_hash("TapLeaf", bytes([leaf_version]) + compact_size(len(leaf)) + leaf)
        msg += b"\x00" + codesep_pos.to_bytes(4, "little")  # key_version 0
    return bytes(msg)


def taproot_sighash(
    tx: bytes,
    index: int,
    spent: Sequence[tuple[bytes, int]],
    hash_type: int,
    *,
    leaf: bytes | None = None,
    leaf_version: int = TAPSCRIPT_LEAF_VERSION,
    annex: bytes | None = None,
    codesep_pos: int = _NO_CODESEPARATOR,
) -> bytes:
    """The 32 bytes a BIP 340 signature of input ``index`` signs (arguments as for
    :func:`taproot_sig_message`). Raises :class:`SighashError` where BIP 341 has no
    digest: an unknown hash type, SIGHASH_SINGLE without its output, a bad index."""
    message = taproot_sig_message(
        tx,
        index,
        spent,
        hash_type,
        leaf=leaf,
        leaf_version=leaf_version,
        annex=annex,
        codesep_pos=codesep_pos,
    )
    return tagged_hash("TapSighash", message)
