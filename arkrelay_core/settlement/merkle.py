"""The merkle tree a 31342 commits to, as specified in docs/settlement.md.

Leaves are the period's ark txids, deduplicated and sorted, so anyone holding the same set
of txids computes the same root whatever order they learnt them in. Leaf and inner nodes
hash under different BIP340-style tags, so no inner node can pass for a leaf. A node
without a sibling moves up unchanged rather than being paired with itself, which keeps
two different sets of leaves from sharing a root.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

__all__ = [
    "COMMITMENT_MAGIC",
    "COMMITMENT_VERSION",
    "LEAF_TAG",
    "NODE_TAG",
    "MerkleProof",
    "ProofStep",
    "build_proof",
    "commitment_payload",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "ordered_leaves",
    "parse_commitment_payload",
    "path_sides",
    "root_from_proof",
]

LEAF_TAG = b"ArkRelay/l2-leaf"
NODE_TAG = b"ArkRelay/l2-node"
#: The OP_RETURN data of an anchor commitment: magic, version, then the 32-byte root.
COMMITMENT_MAGIC = b"ARKR"
COMMITMENT_VERSION = 1


class ProofStep(msgspec.Struct, frozen=True):
    """A sibling on the way from the leaf to the root, and which side it sits on."""

    side: Literal["left", "right"]
    hash: str


class MerkleProof(msgspec.Struct, frozen=True):
    ark_txid: str
    index: int
    count: int
    path: tuple[ProofStep, ...]
    merkle_root: str


def _tagged(tag: bytes, message: bytes) -> bytes:
    digest = hashlib.sha256(tag).digest()
    return hashlib.sha256(digest + digest + message).digest()


_TXID = re.compile(r"[0-9a-f]{64}")


def _txid_bytes(ark_txid: str) -> bytes:
    # A full match, not bytes.fromhex alone: that skips whitespace, and " " + txid would
    # become a second leaf hashing like the first.
    if not isinstance(ark_txid, str) or _TXID.fullmatch(ark_txid) is None:
        raise ValueError(f"not a txid (64 lowercase hex characters): {ark_txid!r}")
    return bytes.fromhex(ark_txid)


def leaf_hash(ark_txid: str) -> bytes:
    return _tagged(LEAF_TAG, _txid_bytes(ark_txid))


def node_hash(left: bytes, right: bytes) -> bytes:
    return _tagged(NODE_TAG, left + right)


def ordered_leaves(ark_txids: Iterable[str]) -> list[str]:
    """The leaf order: each txid once, ascending."""
    unique = set(ark_txids)
    for txid in unique:
        _txid_bytes(txid)
    return sorted(unique)


def _levels(leaves: Sequence[str]) -> list[list[bytes]]:
    if not leaves:
        raise ValueError("a merkle tree needs at least one leaf")
    level = [leaf_hash(txid) for txid in leaves]
    levels = [level]
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        levels.append(level)
    return levels


def merkle_root(ark_txids: Iterable[str]) -> str:
    """The root over ``ark_txids`` (any order; duplicates count once), as hex."""
    return _levels(ordered_leaves(ark_txids))[-1][0].hex()


def build_proof(ark_txids: Iterable[str], ark_txid: str) -> MerkleProof:
    """The path from ``ark_txid``'s leaf to the root; ValueError if it is not a leaf."""
    leaves = ordered_leaves(ark_txids)
    try:
        index = leaves.index(ark_txid)
    except ValueError:
        raise ValueError(f"{ark_txid} is not among the committed transactions") from None
    levels = _levels(leaves)
    path: list[ProofStep] = []
    position = index
    for level in levels[:-1]:
        sibling = position ^ 1
        if sibling < len(level):
            side: Literal["left", "right"] = "left" if sibling < position else "right"
            path.append(ProofStep(side, level[sibling].hex()))
        position //= 2
    return MerkleProof(ark_txid, index, len(leaves), tuple(path), levels[-1][0].hex())


def path_sides(index: int, count: int) -> list[Literal["left", "right"]]:
    """The side of each sibling on the path of leaf ``index`` among ``count`` leaves.

    A node without a sibling moves up unchanged, so its level adds no step: the shape of a
    path is fixed by (index, count), and a path of another shape is for another tree.
    """
    if not 0 <= index < count:
        raise ValueError(f"index {index} is not below count {count}")
    sides: list[Literal["left", "right"]] = []
    while count > 1:
        if index ^ 1 < count:
            sides.append("left" if index & 1 else "right")
        index //= 2
        count = (count + 1) // 2
    return sides


def root_from_proof(ark_txid: str, path: Sequence[ProofStep]) -> str:
    """Fold ``path`` over the leaf of ``ark_txid``; equal to the root if the proof holds."""
    current = leaf_hash(ark_txid)
    for step in path:
        sibling = bytes.fromhex(step.hash)
        if len(sibling) != 32:
            raise ValueError(f"a proof step is not a 32-byte hash: {step.hash!r}")
        if step.side == "left":
            current = node_hash(sibling, current)
        else:
            current = node_hash(current, sibling)
    return current.hex()


def commitment_payload(merkle_root_hex: str) -> bytes:
    """The OP_RETURN data committing to a root: b"ARKR", version 1, the 32-byte root."""
    root = bytes.fromhex(merkle_root_hex)
    if len(root) != 32:
        raise ValueError("a merkle root is 32 bytes")
    return COMMITMENT_MAGIC + bytes([COMMITMENT_VERSION]) + root


def parse_commitment_payload(data: bytes) -> str:
    """The root (hex) an OP_RETURN payload commits to; ValueError if it is not ours."""
    if len(data) != 37 or data[:4] != COMMITMENT_MAGIC or data[4] != COMMITMENT_VERSION:
        raise ValueError("not an ArkRelay commitment payload")
    return data[5:].hex()
