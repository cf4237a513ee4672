"""Arkade asset packets: the asset transfers an ark tx carries in its extension output.

Struct literals are not checked (as Go's are not); the ``new`` constructors and the
decoders are.

The wire format of arkd v0.9.15 (pkg/ark-lib/asset): a packet is a varint count of asset
groups; a group is a presence byte (0x01 asset id, 0x02 control asset, 0x04 metadata), the
present parts, then its inputs and outputs, each a varint-counted list. Integers are
unsigned LEB128 varints (Go's ``binary.PutUvarint``) except vins, vouts and asset-id
indexes (uint16, little-endian). Txids are written in display order. Every constructor and
decoder checks what ark-lib checks and refuses with ark-lib's words, so arkd's fixtures
(pkg/ark-lib/asset/testdata) hold this module to it.
"""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
from collections.abc import Sequence

__all__ = [
    "PACKET_TYPE",
    "AssetError",
    "AssetGroup",
    "AssetId",
    "AssetInput",
    "AssetOutput",
    "AssetRef",
    "Metadata",
    "Packet",
    "decode_inputs",
    "decode_metadata_list",
    "decode_outputs",
    "encode_inputs",
    "encode_metadata_list",
    "encode_outputs",
    "metadata_hash",
]

#: The extension packet type of an asset packet.
PACKET_TYPE = 0
MAX_GROUPS = MAX_INPUTS = MAX_OUTPUTS = MAX_METADATA = 1000
ASSET_ID_SIZE = 34

_HAS_ASSET_ID, _HAS_CONTROL_ASSET, _HAS_METADATA = 0x01, 0x02, 0x04
REF_BY_ID, REF_BY_GROUP = 1, 2
INPUT_LOCAL, INPUT_INTENT = 1, 2
OUTPUT_LOCAL = 1


class AssetError(ValueError):
    """A packet or part ark-lib refuses; the text is ark-lib's."""


class _EOF(AssetError):
    def __init__(self) -> None:
        super().__init__("EOF")


# ------------------------------------------------------------------------- primitives


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _var_slice(data: bytes) -> bytes:
    return _uvarint(len(data)) + data


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "little")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if not self.left():
            raise _EOF()
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, size: int) -> bytes:
        if self.left() < size:
            raise _EOF()
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def uvarint(self) -> int:
        value = shift = 0
        for i in range(10):
            if not self.left():
                raise AssetError("EOF" if i == 0 else "unexpected EOF")
            b = self.byte()
            if i == 9 and b > 1:
                raise AssetError("binary: varint overflows a 64-bit integer")
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7
        raise AssetError("binary: varint overflows a 64-bit integer")

    def var_slice(self) -> bytes:
        size = self.uvarint()
        if size > self.left():
            raise _EOF()
        return self.take(size)


def _unhex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise AssetError(f"invalid {what} format, must be hex") from exc


def _txid(text: str, what: str) -> str:
    """A display-order txid as ark-lib's constructors take it (``what``: "txid" or "asset
    input txid")."""
    if not text:
        raise AssetError(f"missing {what}")
    if len(text) != 64:
        raise AssetError(f"invalid {what} length, got {len(text)} want 64")
    try:
        binascii.unhexlify(text)
    except binascii.Error as exc:
        raise AssetError(f"invalid {what} format") from exc
    return text.lower()


_ZERO_TXID = "00" * 32


# ------------------------------------------------------------------------- asset ids


@dataclasses.dataclass(frozen=True)
class AssetId:
    """The txid that issued the asset and the index of its group there."""

    txid: str
    index: int

    @classmethod
    def new(cls, txid: str, index: int) -> AssetId:
        asset_id = cls(_txid(txid, "txid"), index)
        asset_id.validate()
        return asset_id

    @classmethod
    def from_hex(cls, text: str) -> AssetId:
        data = _unhex(text, "asset id")
        if not data:
            raise AssetError("missing asset id")
        return cls.read(_Reader(data))

    @classmethod
    def read(cls, r: _Reader) -> AssetId:
        if r.left() < ASSET_ID_SIZE:
            raise AssetError(f"invalid asset id length: got {r.left()}, want {ASSET_ID_SIZE}")
        asset_id = cls(r.take(32).hex(), r.u16())
        asset_id.validate()
        return asset_id

    def validate(self) -> None:
        if self.txid == _ZERO_TXID:
            raise AssetError("empty txid")

    def encode(self) -> bytes:
        return bytes.fromhex(self.txid) + _u16(self.index)

    def __str__(self) -> str:
        return self.encode().hex()


@dataclasses.dataclass(frozen=True)
class AssetRef:
    """An asset named by id, or by the index of a group in the same packet."""

    asset_id: AssetId | None = None
    group_index: int | None = None

    @classmethod
    def from_hex(cls, text: str) -> AssetRef:
        data = _unhex(text, "asset ref")
        if not data:
            raise AssetError("missing asset ref")
        return cls.read(_Reader(data))

    @classmethod
    def read(cls, r: _Reader) -> AssetRef:
        kind = r.byte()
        if kind == REF_BY_ID:
            return cls(asset_id=AssetId.read(r))
        if kind == REF_BY_GROUP:
            try:
                return cls(group_index=r.u16())
            except _EOF as exc:
                raise AssetError("invalid asset ref length") from exc
        if kind == 0:
            raise AssetError("asset ref type unspecified")
        raise AssetError(f"asset ref type unknown {kind}")

    def encode(self) -> bytes:
        if self.asset_id is not None:
            return bytes([REF_BY_ID]) + self.asset_id.encode()
        return bytes([REF_BY_GROUP]) + _u16(self.group_index or 0)

    def __str__(self) -> str:
        return self.encode().hex()


# ------------------------------------------------------------------------- inputs, outputs


@dataclasses.dataclass(frozen=True)
class AssetInput:
    """Units of the asset taken from the ark tx's input ``vin`` (local), or from output
    ``vin`` of the intent tx ``txid`` (intent: a batch leaf's inputs)."""

    vin: int
    amount: int
    txid: str = ""  # display order; set for intent inputs only

    @property
    def kind(self) -> int:
        return INPUT_INTENT if self.txid else INPUT_LOCAL

    @classmethod
    def intent(cls, txid: str, vin: int, amount: int) -> AssetInput:
        if not txid:
            raise AssetError("missing asset input txid")
        checked = _txid(txid, "asset input txid")
        if checked == _ZERO_TXID:
            raise AssetError("missing asset input txid")
        return cls(vin, amount, checked)

    @classmethod
    def from_hex(cls, text: str) -> AssetInput:
        data = _unhex(text, "asset input")
        if not data:
            raise AssetError("missing asset input")
        return cls.read(_Reader(data))

    @classmethod
    def read(cls, r: _Reader) -> AssetInput:
        kind = r.byte()
        if kind == INPUT_LOCAL:
            return cls(r.u16(), r.uvarint())
        if kind == INPUT_INTENT:
            try:
                txid = r.take(32).hex()
            except _EOF as exc:
                raise AssetError("invalid asset input txid length") from exc
            vin, amount = r.u16(), r.uvarint()
            if txid == _ZERO_TXID:
                raise AssetError("missing asset input txid")
            return cls(vin, amount, txid)
        if kind == 0:
            raise AssetError("asset input type unspecified")
        raise AssetError(f"asset input type unknown {kind}")

    def encode(self) -> bytes:
        head = bytes([self.kind]) + (bytes.fromhex(self.txid) if self.txid else b"")
        return head + _u16(self.vin) + _uvarint(self.amount)

    def __str__(self) -> str:
        return self.encode().hex()


def _check_inputs(inputs: Sequence[AssetInput]) -> None:
    seen: set[int] = set()
    for item in inputs:
        if item.vin in seen:
            raise AssetError("all inputs must have unique vin")
        seen.add(item.vin)
        if item.kind != inputs[0].kind:
            raise AssetError("all inputs must be of the same type")


def encode_inputs(inputs: Sequence[AssetInput]) -> bytes:
    return _uvarint(len(inputs)) + b"".join(i.encode() for i in inputs)


def decode_inputs(text: str) -> list[AssetInput]:
    """ark-lib's NewAssetInputsFromString."""
    if not text:
        raise AssetError("missing asset inputs")
    return _read_inputs(_Reader(_unhex(text, "asset inputs")))


def _read_inputs(r: _Reader) -> list[AssetInput]:
    count = r.uvarint()
    if count > MAX_INPUTS:
        raise AssetError(f"invalid asset input count, max={MAX_INPUTS}, got={count}")
    inputs = [AssetInput.read(r) for _ in range(count)]
    _check_inputs(inputs)
    return inputs


def new_inputs(inputs: Sequence[AssetInput]) -> list[AssetInput]:
    """ark-lib's NewAssetInputs."""
    if not inputs:
        raise AssetError("missing asset inputs")
    _check_inputs(inputs)
    return list(inputs)


@dataclasses.dataclass(frozen=True)
class AssetOutput:
    """Units of the asset given to the ark tx's output ``vout``."""

    vout: int
    amount: int

    @classmethod
    def new(cls, vout: int, amount: int) -> AssetOutput:
        output = cls(vout, amount)
        output.validate()
        return output

    def validate(self) -> None:
        if self.amount == 0:
            raise AssetError("asset output amount must be greater than 0")

    @classmethod
    def from_hex(cls, text: str) -> AssetOutput:
        data = _unhex(text, "asset output")
        if not data:
            raise AssetError("missing asset output")
        return cls.read(_Reader(data))

    @classmethod
    def read(cls, r: _Reader) -> AssetOutput:
        kind = r.byte()
        if kind == 0:
            raise AssetError("asset output type unspecified")
        if kind != OUTPUT_LOCAL:
            raise AssetError(f"asset output type unknown {kind}")
        try:
            vout = r.u16()
        except _EOF as exc:
            raise AssetError("invalid asset output vout length") from exc
        return cls.new(vout, r.uvarint())

    def encode(self) -> bytes:
        return bytes([OUTPUT_LOCAL]) + _u16(self.vout) + _uvarint(self.amount)

    def __str__(self) -> str:
        return self.encode().hex()


def _check_outputs(outputs: Sequence[AssetOutput]) -> None:
    seen: set[int] = set()
    for item in outputs:
        if item.vout in seen:
            raise AssetError("all outputs must have unique vout")
        seen.add(item.vout)
        item.validate()


def new_outputs(outputs: Sequence[AssetOutput]) -> list[AssetOutput]:
    """ark-lib's NewAssetOutputs."""
    if not outputs:
        raise AssetError("missing asset outputs")
    _check_outputs(outputs)
    return list(outputs)


def encode_outputs(outputs: Sequence[AssetOutput]) -> bytes:
    _check_outputs(outputs)
    return _uvarint(len(outputs)) + b"".join(o.encode() for o in outputs)


def decode_outputs(text: str) -> list[AssetOutput]:
    """ark-lib's NewAssetOutputsFromString."""
    if not text:
        raise AssetError("missing asset outputs")
    return _read_outputs(_Reader(_unhex(text, "asset outputs")))


def _read_outputs(r: _Reader) -> list[AssetOutput]:
    count = r.uvarint()
    if count > MAX_OUTPUTS:
        raise AssetError(f"invalid asset output count, max={MAX_OUTPUTS}, got={count}")
    outputs = [AssetOutput.read(r) for _ in range(count)]
    _check_outputs(outputs)
    return outputs


# ------------------------------------------------------------------------- metadata


@dataclasses.dataclass(frozen=True)
class Metadata:
    key: bytes
    value: bytes

    @classmethod
    def new(cls, key: str, value: str) -> Metadata:
        item = cls(key.encode(), value.encode())
        item.validate()
        return item

    def validate(self) -> None:
        if not self.key:
            raise AssetError("missing metadata key")
        if not self.value:
            raise AssetError("missing metadata value")

    @classmethod
    def from_hex(cls, text: str) -> Metadata:
        data = _unhex(text, "metadata")
        if not data:
            raise AssetError("missing metadata")
        return cls.read(_Reader(data))

    @classmethod
    def read(cls, r: _Reader) -> Metadata:
        try:
            key, value = r.var_slice(), r.var_slice()
        except _EOF as exc:
            raise AssetError("invalid metadata length") from exc
        item = cls(key, value)
        item.validate()
        return item

    def encode(self) -> bytes:
        return _var_slice(self.key) + _var_slice(self.value)

    def __str__(self) -> str:
        return self.encode().hex()


def encode_metadata_list(items: Sequence[Metadata]) -> bytes:
    return _uvarint(len(items)) + b"".join(m.encode() for m in items)


def decode_metadata_list(text: str) -> list[Metadata]:
    """ark-lib's NewMetadataListFromString."""
    data = _unhex(text, "metadata list")
    if not data:
        raise AssetError("missing metadata list")
    return _read_metadata_list(_Reader(data))


def _read_metadata_list(r: _Reader) -> list[Metadata]:
    count = r.uvarint()
    if count > MAX_METADATA:
        raise AssetError(f"invalid asset metadata list count, max={MAX_METADATA}, got={count}")
    return [Metadata.read(r) for _ in range(count)]


def _tagged(tag: bytes, *parts: bytes) -> bytes:
    digest = hashlib.sha256(tag).digest()
    return hashlib.sha256(digest + digest + b"".join(parts)).digest()


def metadata_hash(items: Sequence[Metadata]) -> bytes | None:
    """The merkle root ark-lib commits to an asset's metadata with: leaves tagged
    ``ArkadeAssetLeaf`` (version 0, key, value), branches ``ArkadeAssetBranch`` over the
    pair in byte order, an odd node carried up as is. None for no metadata."""
    if not items:
        return None
    level = [_tagged(b"ArkadeAssetLeaf", b"\x00" + m.encode()) for m in items]
    while len(level) > 1:
        paired = [
            _tagged(b"ArkadeAssetBranch", min(a, b), max(a, b))
            for a, b in zip(level[::2], level[1::2], strict=False)
        ]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


# ------------------------------------------------------------------------- groups, packets


@dataclasses.dataclass(frozen=True)
class AssetGroup:
    """One asset's movement in a tx: issued here (no ``asset_id``) or an existing one."""

    asset_id: AssetId | None = None
    control_asset: AssetRef | None = None
    inputs: tuple[AssetInput, ...] = ()
    outputs: tuple[AssetOutput, ...] = ()
    metadata: tuple[Metadata, ...] = ()

    @classmethod
    def new(
        cls,
        asset_id: AssetId | None = None,
        control_asset: AssetRef | None = None,
        inputs: Sequence[AssetInput] = (),
        outputs: Sequence[AssetOutput] = (),
        metadata: Sequence[Metadata] = (),
    ) -> AssetGroup:
        group = cls(asset_id, control_asset, tuple(inputs), tuple(outputs), tuple(metadata))
        group.validate()
        return group

    def validate(self) -> None:
        if self.asset_id is None and not self.inputs and not self.outputs:
            raise AssetError("empty asset group")
        if self.asset_id is not None:
            self.asset_id.validate()
        if self.asset_id is None and self.inputs:
            raise AssetError("issuance must have no inputs")
        if self.asset_id is not None and self.control_asset is not None:
            raise AssetError("only issuance can have a control asset")
        for item in self.outputs:
            item.validate()
        for entry in self.metadata:
            entry.validate()

    @property
    def is_issuance(self) -> bool:
        return self.asset_id is None

    @classmethod
    def from_hex(cls, text: str) -> AssetGroup:
        try:
            data = bytes.fromhex(text)
        except ValueError as exc:
            raise AssetError("invalid format, must be hex") from exc
        if not data:
            raise AssetError("missing asset group")
        return cls.read(_Reader(data))

    @classmethod
    def read(cls, r: _Reader) -> AssetGroup:
        presence = r.byte()
        asset_id = AssetId.read(r) if presence & _HAS_ASSET_ID else None
        control = AssetRef.read(r) if presence & _HAS_CONTROL_ASSET else None
        metadata = _read_metadata_list(r) if presence & _HAS_METADATA else []
        inputs = _read_inputs(r)
        outputs = _read_outputs(r)
        return cls.new(asset_id, control, inputs, outputs, metadata)

    def encode(self) -> bytes:
        presence = (
            (_HAS_ASSET_ID if self.asset_id else 0)
            | (_HAS_CONTROL_ASSET if self.control_asset else 0)
            | (_HAS_METADATA if self.metadata else 0)
        )
        out = bytearray([presence])
        if self.asset_id is not None:
            out += self.asset_id.encode()
        if self.control_asset is not None:
            out += self.control_asset.encode()
        if self.metadata:
            out += encode_metadata_list(self.metadata)
        return bytes(out + encode_inputs(self.inputs) + encode_outputs(self.outputs))

    def __str__(self) -> str:
        return self.encode().hex()


@dataclasses.dataclass(frozen=True)
class Packet:
    """The asset groups of one tx (extension packet type 0)."""

    groups: tuple[AssetGroup, ...]

    @classmethod
    def new(cls, groups: Sequence[AssetGroup]) -> Packet:
        packet = cls(tuple(groups))
        packet.validate()
        return packet

    def validate(self) -> None:
        if not self.groups:
            raise AssetError("missing assets")
        if len(self.groups) > MAX_GROUPS:
            raise AssetError(f"invalid asset group count, max={MAX_GROUPS}, got={len(self.groups)}")
        seen: set[AssetId] = set()
        for group in self.groups:
            if group.asset_id is not None:
                if group.asset_id in seen:
                    raise AssetError(f"duplicate asset group for asset {group.asset_id}")
                seen.add(group.asset_id)
            group.validate()
            ref = group.control_asset
            index = ref.group_index if ref is not None else None
            if index is not None and index >= len(self.groups):
                raise AssetError(
                    f"invalid control asset group index, {index} out of range "
                    f"[0, {len(self.groups) - 1}]"
                )

    @classmethod
    def from_hex(cls, text: str) -> Packet:
        if not text:
            raise AssetError("missing packet data")
        return cls.decode(_unhex(text, "packet"))

    @classmethod
    def decode(cls, data: bytes) -> Packet:
        r = _Reader(data)
        count = r.uvarint()
        if count > MAX_GROUPS:
            raise AssetError(f"invalid asset group count, max={MAX_GROUPS}, got={count}")
        groups = tuple(AssetGroup.read(r) for _ in range(count))
        if r.left():
            raise AssetError(f"invalid packet length, left {r.left()} unknown bytes to read")
        return cls.new(groups)

    def encode(self) -> bytes:
        if not self.groups:
            return b""
        return _uvarint(len(self.groups)) + b"".join(g.encode() for g in self.groups)

    def leaf_tx_packet(self, intent_txid: str) -> Packet:
        """The packet of a batch leaf tx: each group's inputs replaced by one intent input
        pointing at the intent tx (ark-lib's LeafTxPacket)."""
        return Packet(
            tuple(
                dataclasses.replace(g, inputs=(AssetInput(0, 0, intent_txid.lower()),))
                for g in self.groups
            )
        )

    def __str__(self) -> str:
        return self.encode().hex()
