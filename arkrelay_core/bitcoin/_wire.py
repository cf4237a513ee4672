"""Reading a transaction in Bitcoin's consensus serialization, as far as signing needs.

Only what a signature message commits to is kept (version, each input's outpoint and
sequence, each output's serialization, locktime); witnesses are skipped, scriptSigs too.
"""

from __future__ import annotations

import dataclasses

__all__ = ["WireError", "WireTx", "compact_size", "read_tx"]


class WireError(ValueError):
    """The bytes are not one whole transaction."""


@dataclasses.dataclass(frozen=True)
class WireTx:
    version: bytes  # 4 bytes, little-endian, as serialized
    locktime: bytes  # 4 bytes, likewise
    outpoints: tuple[bytes, ...]  # 36 bytes each: txid (internal order) and vout
    sequences: tuple[bytes, ...]  # 4 bytes each
    outputs: tuple[bytes, ...]  # amount (8 bytes) and the length-prefixed scriptPubKey


def compact_size(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise WireError("transaction truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def size(self) -> int:
        first = self.take(1)[0]
        width = {0xFD: 2, 0xFE: 4, 0xFF: 8}.get(first)
        return first if width is None else int.from_bytes(self.take(width), "little")


def read_tx(raw: bytes) -> WireTx:
    """Parse ``raw`` (with or without the segwit marker and witnesses)."""
    r = _Reader(bytes(raw))
    version = r.take(4)
    # BIP 144: a zero input count followed by flag 0x01 marks the extended form.
    segwit = raw[4:6] == b"\x00\x01"
    if segwit:
        r.take(2)
    outpoints, sequences = [], []
    for _ in range(r.size()):
        outpoints.append(r.take(36))
        r.take(r.size())  # scriptSig: no part of a segwit signature message
        sequences.append(r.take(4))
    outputs = []
    for _ in range(r.size()):
        start = r.pos
        r.take(8)
        r.take(r.size())
        outputs.append(r.data[start : r.pos])
    if segwit:
        for _ in outpoints:
            for _ in range(r.size()):
                r.take(r.size())
    locktime = r.take(4)
    if r.pos != len(r.data):
        raise WireError(f"{len(r.data) - r.pos} bytes after the transaction")
    return WireTx(version, locktime, tuple(outpoints), tuple(sequences), tuple(outputs))
