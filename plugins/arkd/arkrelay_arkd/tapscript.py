"""Ark VTXO scripts: the closures arkd uses, their taproot trees and the PSBT ``taptree`` field.

Keys are 32-byte x-only. Trees are assembled the way btcd's ``AssembleTaprootScriptTree``
does (leaves paired in order, leftovers merged upward) with the BIP341 NUMS point as the
internal key, so output keys match what arkd computes for the same leaves. The tweak is
computed with coincurve rather than embit's ``PublicKey.taproot_tweak``, which keeps only
the x coordinate: a control block also needs the tweaked key's parity.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import coincurve
from embit.hashes import tagged_hash

__all__ = [
    "ANCHOR_SCRIPT",
    "LEAF_VERSION",
    "NUMS_XONLY",
    "TAPTREE_FIELD_KEY",
    "TapTree",
    "bip68_sequence",
    "checkpoint_tree",
    "collaborative_closure",
    "csv_closure",
    "decode_taptree_field",
    "default_vtxo_tree",
    "encode_taptree_field",
    "leaf_hash",
    "multisig_keys",
    "p2tr_script",
    "parse_csv_closure",
    "push_int",
    "sequence_delay",
]

LEAF_VERSION = 0xC0
#: BIP341's provably unspendable internal key (H = lift_x(sha256(G))), as arkd uses it.
NUMS_XONLY = bytes.fromhex("50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0")
#: Pay-to-anchor: the last output of every ark and checkpoint tx.
ANCHOR_SCRIPT = bytes.fromhex("51024e73")
#: Ark's PSBT input extension (an unknown field): type byte 0xDE, then "taptree".
TAPTREE_FIELD_KEY = b"\xde" + b"taptree"

OP_0 = 0x00
OP_1 = 0x51
OP_1NEGATE = 0x4F
OP_DROP = 0x75
OP_CHECKSIG = 0xAC
OP_CHECKSIGVERIFY = 0xAD
OP_CHECKSEQUENCEVERIFY = 0xB2
OP_PUSHDATA1 = 0x4C

#: Trees remembered (most recently used kept): a few per active key.
TREE_CACHE = 4096

_SEQUENCE_TYPE_SECONDS = 1 << 22
_SECONDS_GRANULARITY = 9
_SECONDS_MIN = 512


def bip68_sequence(delay: int) -> int:
    """The nSequence / CSV argument for a relative delay (ark-lib's convention).

    512 or more is seconds (must be a multiple of 512); below that it is blocks.
    """
    if delay < 0:
        raise ValueError(f"negative delay {delay}")
    if delay < _SECONDS_MIN:
        return delay
    if delay % _SECONDS_MIN:
        raise ValueError(f"a delay in seconds must be a multiple of 512, got {delay}")
    return _SEQUENCE_TYPE_SECONDS | (delay >> _SECONDS_GRANULARITY)


def sequence_delay(sequence: int) -> int:
    """The delay a BIP68 sequence encodes, in ark-lib's unit (seconds, or blocks counted
    as one second each)."""
    if sequence & _SEQUENCE_TYPE_SECONDS:
        return (sequence & 0xFFFF) << _SECONDS_GRANULARITY
    return sequence & 0xFFFF


def push_int(n: int) -> bytes:
    """A minimal script-number push, as btcd's ScriptBuilder.AddInt64 writes it."""
    if n == 0:
        return bytes([OP_0])
    if n == -1:
        return bytes([OP_1NEGATE])
    if 1 <= n <= 16:
        return bytes([OP_1 + n - 1])
    negative, value, out = n < 0, abs(n), bytearray()
    while value:
        out.append(value & 0xFF)
        value >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if negative else 0x00)
    elif negative:
        out[-1] |= 0x80
    return _push_data(bytes(out))


def _push_data(data: bytes) -> bytes:
    if len(data) < OP_PUSHDATA1:
        return bytes([len(data)]) + data
    if len(data) <= 0xFF:
        return bytes([OP_PUSHDATA1, len(data)]) + data
    raise ValueError("push too large for a closure")


def _read_int(script: bytes, pos: int) -> tuple[int, int] | None:
    op = script[pos]
    if op == OP_0:
        return 0, pos + 1
    if OP_1 <= op <= OP_1 + 15:
        return op - OP_1 + 1, pos + 1
    if 1 <= op <= 8 and pos + 1 + op <= len(script):
        raw = script[pos + 1 : pos + 1 + op]
        value = int.from_bytes(raw, "little")
        if raw[-1] & 0x80:
            value = -(value & ~(0x80 << (8 * (len(raw) - 1))))
        return value, pos + 1 + op
    return None


def collaborative_closure(*keys: bytes) -> bytes:
    """``<k1> OP_CHECKSIGVERIFY ... <kn> OP_CHECKSIG`` (ark-lib's MultisigClosure)."""
    if not keys:
        raise ValueError("a multisig closure needs at least one key")
    out = bytearray()
    for i, key in enumerate(keys):
        _check_xonly(key)
        out += _push_data(key)
        out.append(OP_CHECKSIG if i == len(keys) - 1 else OP_CHECKSIGVERIFY)
    return bytes(out)


def csv_closure(delay: int, *keys: bytes) -> bytes:
    """``<seq> OP_CSV OP_DROP`` + a multisig closure (ark-lib's CSVMultisigClosure)."""
    return (
        push_int(bip68_sequence(delay))
        + bytes([OP_CHECKSEQUENCEVERIFY, OP_DROP])
        + collaborative_closure(*keys)
    )


def multisig_keys(script: bytes) -> list[bytes] | None:
    """The keys of a CHECKSIGVERIFY-chain multisig closure, or None if it is not one."""
    keys: list[bytes] = []
    pos = 0
    while pos < len(script):
        if script[pos] != 32 or pos + 34 > len(script):
            return None
        keys.append(script[pos + 1 : pos + 33])
        op = script[pos + 33]
        pos += 34
        if op == OP_CHECKSIG:
            return keys if pos == len(script) else None
        if op != OP_CHECKSIGVERIFY:
            return None
    return None


def parse_csv_closure(script: bytes) -> tuple[int, list[bytes]] | None:
    """(BIP68 sequence, keys) of a CSV multisig closure, or None if it is not one."""
    if not script:
        return None
    read = _read_int(script, 0)
    if read is None:
        return None
    sequence, pos = read
    if script[pos : pos + 2] != bytes([OP_CHECKSEQUENCEVERIFY, OP_DROP]):
        return None
    keys = multisig_keys(script[pos + 2 :])
    return (sequence, keys) if keys is not None else None


def leaf_hash(script: bytes) -> bytes:
    return tagged_hash("TapLeaf", bytes([LEAF_VERSION]) + _compact_size(len(script)) + script)


def p2tr_script(xonly: bytes) -> bytes:
    _check_xonly(xonly)
    return b"\x51\x20" + xonly


@dataclasses.dataclass(frozen=True)
class TapTree:
    """A taproot script tree over ``leaves`` with the NUMS internal key."""

    leaves: tuple[bytes, ...]
    merkle_root: bytes
    output_key: bytes
    output_key_odd: bool
    #: For each leaf, the sibling hashes from the leaf up to the root.
    paths: tuple[bytes, ...]

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> TapTree:
        if not leaves:
            raise ValueError("a tap tree needs at least one leaf")
        return _tree(tuple(bytes(leaf) for leaf in leaves))

    @property
    def pk_script(self) -> bytes:
        return p2tr_script(self.output_key)

    def index(self, script: bytes) -> int:
        return self.leaves.index(script)

    def control_block(self, index: int) -> bytes:
        return bytes([LEAF_VERSION | int(self.output_key_odd)]) + NUMS_XONLY + self.paths[index]


# A tree is a pure function of its leaves and immutable; a ceremony meets the same few
# (each party's default tree, the checkpoint trees) several times on both sides of arkd.
@functools.lru_cache(maxsize=TREE_CACHE)
def _tree(leaves: tuple[bytes, ...]) -> TapTree:
    root, paths = _assemble([leaf_hash(s) for s in leaves])
    tweak = tagged_hash("TapTweak", NUMS_XONLY + root)
    tweaked = coincurve.PublicKey(b"\x02" + NUMS_XONLY).add(tweak).format()
    return TapTree(
        leaves=leaves,
        merkle_root=root,
        output_key=tweaked[1:],
        output_key_odd=tweaked[0] == 0x03,
        paths=tuple(paths),
    )


def default_vtxo_tree(owner: bytes, signer: bytes, exit_delay: int) -> TapTree:
    """ark-lib's default VTXO script: [exit (owner after CSV), collaborative (owner+signer)]."""
    return TapTree.from_leaves(
        [csv_closure(exit_delay, owner), collaborative_closure(owner, signer)]
    )


def checkpoint_tree(checkpoint_tapscript: bytes, collaborative: bytes) -> TapTree:
    """The checkpoint output's tree: [server's unroll closure, the input's collaborative leaf]."""
    return TapTree.from_leaves([checkpoint_tapscript, collaborative])


def encode_taptree_field(leaves: Sequence[bytes]) -> bytes:
    """The ``taptree`` value: per leaf [depth][0xC0][compact size][script] (depth as ark-lib)."""
    out = bytearray()
    n = len(leaves)
    for i, script in enumerate(leaves):
        out.append(min(i + 1, n - 1))
        out.append(LEAF_VERSION)
        out += _compact_size(len(script)) + script
    return bytes(out)


def decode_taptree_field(value: bytes) -> list[bytes]:
    leaves: list[bytes] = []
    pos = 0
    while pos < len(value):
        if pos + 3 > len(value):
            raise ValueError("truncated taptree field")
        size, pos = _read_compact_size(value, pos + 2)
        if pos + size > len(value):
            raise ValueError("truncated taptree leaf")
        leaves.append(value[pos : pos + size])
        pos += size
    return leaves


def _assemble(hashes: list[bytes]) -> tuple[bytes, list[bytes]]:
    """Pair leaves in order, merge a lone last leaf into the last branch, then merge
    branches front to back; returns (root, per-leaf merkle path)."""
    paths = [b""] * len(hashes)
    if len(hashes) == 1:
        return hashes[0], paths

    # A node is (hash, indices of the leaves under it).
    def branch(a: tuple[bytes, list[int]], b: tuple[bytes, list[int]]) -> tuple[bytes, list[int]]:
        for i in a[1]:
            paths[i] += b[0]
        for i in b[1]:
            paths[i] += a[0]
        lo, hi = sorted((a[0], b[0]))
        return tagged_hash("TapBranch", lo + hi), a[1] + b[1]

    branches: list[tuple[bytes, list[int]]] = []
    for i in range(0, len(hashes), 2):
        if i == len(hashes) - 1:
            branches[-1] = branch(branches[-1], (hashes[i], [i]))
        else:
            branches.append(branch((hashes[i], [i]), (hashes[i + 1], [i + 1])))
    while len(branches) > 1:
        merged = branch(branches[0], branches[1])
        branches = [*branches[2:], merged]
    return branches[0][0], paths


def _compact_size(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def _read_compact_size(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}.get(first, 0)
    if not width:
        return first, pos + 1
    if pos + 1 + width > len(data):
        raise ValueError("truncated compact size")
    return int.from_bytes(data[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


def _check_xonly(key: bytes) -> None:
    if len(key) != 32:
        raise ValueError(f"expected a 32-byte x-only key, got {len(key)} bytes")
