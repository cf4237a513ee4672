"""Ark extension outputs: typed packets in one OP_RETURN, as arkd v0.9.15 writes them.

``OP_RETURN <one push: "ARK" then, per packet, type byte + uvarint length + payload>``
(pkg/ark-lib/extension). Packet type 0 is an asset packet (assetpacket.py); any other type
is kept as opaque bytes and written back unchanged. An extension needs at least one packet
and no type twice. Refusals carry ark-lib's words, so its fixtures hold this module to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .assetpacket import PACKET_TYPE as ASSET_PACKET_TYPE
from .assetpacket import AssetError, Packet

__all__ = [
    "MAGIC",
    "Extension",
    "ExtensionError",
    "ExtensionNotFound",
    "UnknownPacket",
    "is_extension",
]

MAGIC = b"ARK"
OP_RETURN = 0x6A
OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4 = 0x4C, 0x4D, 0x4E


class ExtensionError(ValueError):
    """An extension ark-lib refuses; the text is ark-lib's."""


class ExtensionNotFound(ExtensionError):
    """No output of the transaction is an extension (ark-lib's ErrExtensionNotFound)."""

    def __init__(self) -> None:
        super().__init__("no extension output found in transaction")


@dataclasses.dataclass(frozen=True)
class UnknownPacket:
    """A packet of a type this module does not read, kept as its bytes."""

    type: int
    data: bytes

    def encode(self) -> bytes:
        return self.data


AnyPacket = Packet | UnknownPacket


def _packet_type(packet: AnyPacket) -> int:
    return ASSET_PACKET_TYPE if isinstance(packet, Packet) else packet.type


def _push(data: bytes) -> bytes:
    """One data push of any length (arkd bypasses the 520-byte script element limit)."""
    n = len(data)
    if n <= 75:
        return bytes([n]) + data
    if n <= 0xFF:
        return bytes([OP_PUSHDATA1, n]) + data
    if n <= 0xFFFF:
        return bytes([OP_PUSHDATA2]) + n.to_bytes(2, "little") + data
    return bytes([OP_PUSHDATA4]) + n.to_bytes(4, "little") + data


def _first_push(script: bytes, pos: int) -> bytes | None:
    """The data of the opcode at ``pos`` (b"" for a non-push), or None if there is none
    or it is truncated."""
    if pos >= len(script):
        return None
    op = script[pos]
    pos += 1
    if 1 <= op <= 75:
        size = op
    elif op in (OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4):
        width = {OP_PUSHDATA1: 1, OP_PUSHDATA2: 2, OP_PUSHDATA4: 4}[op]
        if pos + width > len(script):
            return None
        size = int.from_bytes(script[pos : pos + width], "little")
        pos += width
    else:
        return b""
    if pos + size > len(script):
        return None
    return script[pos : pos + size]


def is_extension(script: bytes) -> bool:
    """Whether ``script`` is OP_RETURN followed by a push starting with "ARK"."""
    if not script or script[0] != OP_RETURN:
        return False
    payload = _first_push(script, 1)
    return payload is not None and payload[:3] == MAGIC


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(10):
        if pos >= len(data):
            raise ExtensionError("missing packet data: " + ("EOF" if i == 0 else "unexpected EOF"))
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise ExtensionError("missing packet data: binary: varint overflows a 64-bit integer")


@dataclasses.dataclass(frozen=True)
class Extension:
    packets: tuple[AnyPacket, ...]

    @classmethod
    def new(cls, packets: Sequence[AnyPacket]) -> Extension:
        """ark-lib's NewExtensionFromPackets: at least one, no type twice."""
        if not packets:
            raise ExtensionError("missing packets")
        seen: set[int] = set()
        for packet in packets:
            kind = _packet_type(packet)
            if kind in seen:
                raise ExtensionError(f"duplicate packet type 0x{kind:02x}")
            seen.add(kind)
        return cls(tuple(packets))

    @classmethod
    def decode(cls, script: bytes) -> Extension:
        """ark-lib's NewExtensionFromBytes."""
        if not script:
            raise ExtensionError("missing OP_RETURN: EOF")
        if script[0] != OP_RETURN:
            raise ExtensionError(f"expected OP_RETURN, got {script[0]}")
        payload = _first_push(script, 1)
        if payload is None:
            raise ExtensionError("missing magic prefix: EOF")
        if len(payload) < len(MAGIC):
            reason = "unexpected EOF" if payload else "EOF"
            raise ExtensionError(f"missing magic prefix: {reason}")
        if payload[:3] != MAGIC:
            raise ExtensionError(f"expected magic prefix {MAGIC.hex()}, got {payload[:3].hex()}")
        packets: list[AnyPacket] = []
        pos = 3
        while pos < len(payload):
            kind = payload[pos]
            size, pos = _read_uvarint(payload, pos + 1)
            if size > len(payload) - pos:
                raise ExtensionError("missing packet data: EOF")
            data = payload[pos : pos + size]
            pos += size
            if kind == ASSET_PACKET_TYPE:
                try:
                    packets.append(Packet.decode(data))
                except AssetError as exc:
                    raise ExtensionError(str(exc)) from exc
            else:
                packets.append(UnknownPacket(kind, data))
        if not packets:
            raise ExtensionError("missing packets")
        seen: set[int] = set()
        for packet in packets:
            kind = _packet_type(packet)
            if kind in seen:
                raise ExtensionError(f"duplicate packet type {kind}")
            seen.add(kind)
        return cls(tuple(packets))

    @classmethod
    def from_tx(cls, raw_tx: bytes) -> Extension:
        """The extension in the first output that is one (ark-lib's NewExtensionFromTx);
        ``raw_tx`` in the legacy (no-witness) serialization."""
        for script in _output_scripts(raw_tx):
            if is_extension(script):
                return cls.decode(script)
        raise ExtensionNotFound()

    def encode(self) -> bytes:
        """The OP_RETURN script (ark-lib's Serialize)."""
        if not self.packets:
            raise ExtensionError("cannot serialize empty extension: missing packets")
        body = bytearray(MAGIC)
        for packet in self.packets:
            data = packet.encode()
            body += bytes([_packet_type(packet)]) + _uvarint(len(data)) + data
        return bytes([OP_RETURN]) + _push(bytes(body))

    def asset_packet(self) -> Packet | None:
        return next((p for p in self.packets if isinstance(p, Packet)), None)

    def packet(self, kind: int) -> AnyPacket | None:
        return next((p for p in self.packets if _packet_type(p) == kind), None)


def _output_scripts(raw: bytes) -> list[bytes]:
    """The output scripts of a legacy-serialized tx (btcd's DeserializeNoWitness)."""
    pos = 4

    def varint() -> int:
        nonlocal pos
        if pos >= len(raw):
            raise ExtensionError("malformed transaction: EOF")
        first = raw[pos]
        pos += 1
        if first < 0xFD:
            return first
        width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        pos += width
        return int.from_bytes(raw[pos - width : pos], "little")

    def skip(size: int) -> bytes:
        nonlocal pos
        if pos + size > len(raw):
            raise ExtensionError("malformed transaction: EOF")
        pos += size
        return raw[pos - size : pos]

    for _ in range(varint()):
        skip(36)
        skip(varint())
        skip(4)
    scripts = []
    for _ in range(varint()):
        skip(8)
        scripts.append(skip(varint()))
    return scripts
