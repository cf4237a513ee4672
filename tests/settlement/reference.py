"""The settlement merkle tree as docs/settlement.md specifies it, with hashlib alone: what
the tests hold ``arkrelay_core.settlement.merkle``, the API and the CLI against."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["fold", "leaf", "node", "root", "sides", "tagged", "txids"]


def tagged(tag: str, message: bytes) -> bytes:
    digest = hashlib.sha256(tag.encode("ascii")).digest()
    return hashlib.sha256(digest + digest + message).digest()


def leaf(txid: str) -> bytes:
    return tagged("ArkRelay/l2-leaf", bytes.fromhex(txid))


def node(left: bytes, right: bytes) -> bytes:
    return tagged("ArkRelay/l2-node", left + right)


def txids(count: int, seed: str = "t") -> list[str]:
    """``count`` distinct txids, the same for the same seed."""
    return [hashlib.sha256(f"{seed}-{i}".encode()).hexdigest() for i in range(count)]


def root(ids: Iterable[str]) -> bytes:
    level = [leaf(t) for t in sorted(set(ids))]
    while len(level) > 1:
        up = [node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = up + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def fold(txid: str, path: Iterable[tuple[str, bytes]]) -> bytes:
    current = leaf(txid)
    for side, sibling in path:
        current = node(sibling, current) if side == "left" else node(current, sibling)
    return current


def sides(index: int, count: int) -> list[str]:
    found = []
    while count > 1:
        if index ^ 1 < count:
            found.append("left" if index % 2 else "right")
        index, count = index // 2, (count + 1) // 2
    return found
