"""NIP-19 bech32 entities: ``npub``, ``nsec``, ``note``, ``nprofile`` and ``nevent``."""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from arkrelay_core.nostr.bip340 import is_valid_public_key
from arkrelay_core.nostr.errors import Nip19Error

__all__ = [
    "MAX_LENGTH",
    "Decoded",
    "decode",
    "decode_pubkey",
    "encode_nevent",
    "encode_note",
    "encode_nprofile",
    "encode_npub",
    "encode_nsec",
]

# BIP-173 caps a bech32 string at 90 characters, and the usual bech32 packages enforce it,
# but an nprofile or nevent carrying a few relays is longer. That is why this module has its
# own small codec (plain bech32, not bech32m). The cap below only bounds the work per string.
MAX_LENGTH = 5000

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {c: i for i, c in enumerate(_CHARSET)}
_GENERATORS = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")

_TLV_SPECIAL = 0
_TLV_RELAY = 1
_TLV_AUTHOR = 2
_TLV_KIND = 3
_BARE_PREFIXES = ("npub", "nsec", "note")


class Decoded(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded NIP-19 string.

    ``data`` is the 32-byte payload in lowercase hex: the public key (``npub``,
    ``nprofile``), the secret key (``nsec``) or the event id (``note``, ``nevent``).
    ``relays``, ``author`` and ``kind`` are filled from TLV entries when present.
    """

    prefix: str
    data: str
    relays: tuple[str, ...] = ()
    author: str | None = None
    kind: int | None = None

    def __repr__(self) -> str:
        # Keep secret keys out of logs and tracebacks.
        data = "<redacted>" if self.prefix == "nsec" else self.data
        return (
            f"Decoded(prefix={self.prefix!r}, data={data!r}, relays={self.relays!r}, "
            f"author={self.author!r}, kind={self.kind!r})"
        )


# -- bech32 (BIP-173 checksum) --------------------------------------------------------------


def _polymod(values: Sequence[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATORS):
            if (top >> i) & 1:
                checksum ^= generator
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Sequence[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    mask = (1 << to_bits) - 1
    acc_mask = (1 << (from_bits + to_bits - 1)) - 1
    for value in data:
        acc = ((acc << from_bits) | value) & acc_mask
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & mask)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & mask)
    elif bits >= from_bits or (acc << (to_bits - bits)) & mask:
        raise Nip19Error("invalid bech32 padding")
    return out


def _bech32_encode(hrp: str, payload: bytes) -> str:
    words = _convert_bits(payload, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    encoded = hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)
    if len(encoded) > MAX_LENGTH:
        raise Nip19Error(f"encoded string would be {len(encoded)} characters, over {MAX_LENGTH}")
    return encoded


def _bech32_decode(text: str) -> tuple[str, bytes]:
    if not isinstance(text, str):
        raise Nip19Error("bech32 input must be text")
    if len(text) > MAX_LENGTH:
        raise Nip19Error(f"bech32 string is longer than {MAX_LENGTH} characters")
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise Nip19Error("bech32 string contains a character outside printable ASCII")
    if text != text.lower() and text != text.upper():
        raise Nip19Error("bech32 string mixes upper and lower case")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1:
        raise Nip19Error("bech32 string has no prefix and '1' separator")
    if len(text) - sep - 1 < 6:
        raise Nip19Error("bech32 string is too short for its checksum")
    hrp = text[:sep]
    words: list[int] = []
    for c in text[sep + 1 :]:
        if c not in _CHARSET_INDEX:
            raise Nip19Error(f"invalid bech32 character {c!r}")
        words.append(_CHARSET_INDEX[c])
    if _polymod([*_hrp_expand(hrp), *words]) != 1:
        raise Nip19Error("bad checksum")
    return hrp, bytes(_convert_bits(words[:-6], 5, 8, pad=False))


# -- payload helpers ------------------------------------------------------------------------


def _bytes32(value: str | bytes, what: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str):
        try:
            raw = bytes.fromhex(value)
        except ValueError as exc:
            raise Nip19Error(f"{what} payload is not hex") from exc
    else:
        raise Nip19Error(f"{what} payload must be hex text or bytes")
    if len(raw) != 32:
        raise Nip19Error(f"{what} payload must be 32 bytes, got {len(raw)}")
    return raw


def _tlv(entries: Sequence[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for kind, value in entries:
        if len(value) > 255:
            raise Nip19Error(f"TLV {kind} value is {len(value)} bytes, at most 255 fit")
        out += bytes((kind, len(value))) + value
    return bytes(out)


def _relay_entries(relays: Sequence[str]) -> list[tuple[int, bytes]]:
    if isinstance(relays, str):
        raise Nip19Error("relays must be a sequence of URLs, not one string")
    if not all(isinstance(relay, str) for relay in relays):
        raise Nip19Error("each relay must be a URL string")
    return [(_TLV_RELAY, relay.encode("utf-8")) for relay in relays]


def _parse_tlv(data: bytes) -> dict[int, list[bytes]]:
    entries: dict[int, list[bytes]] = {}
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise Nip19Error("truncated TLV entry")
        kind, length = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + 2 + length]
        if len(value) != length:
            raise Nip19Error(f"TLV {kind} claims {length} bytes but only {len(value)} remain")
        entries.setdefault(kind, []).append(value)
        pos += 2 + length
    return entries


def _decode_relays(entries: dict[int, list[bytes]]) -> tuple[str, ...]:
    try:
        return tuple(value.decode("utf-8") for value in entries.get(_TLV_RELAY, ()))
    except UnicodeDecodeError as exc:
        raise Nip19Error("relay URL is not valid UTF-8") from exc


def _special(entries: dict[int, list[bytes]], prefix: str, what: str) -> bytes:
    values = entries.get(_TLV_SPECIAL)
    if not values:
        raise Nip19Error(f"{prefix} has no TLV 0 ({what})")
    if len(values[0]) != 32:
        raise Nip19Error(f"{prefix} {what} must be 32 bytes, got {len(values[0])}")
    return values[0]


# -- public API -----------------------------------------------------------------------------


def encode_npub(pubkey: str) -> str:
    """Encode a 32-byte public key (hex) as ``npub1...``."""
    return _bech32_encode("npub", _bytes32(pubkey, "npub"))


def encode_nsec(secret: bytes | str) -> str:
    """Encode a 32-byte secret key (bytes or hex) as ``nsec1...``."""
    return _bech32_encode("nsec", _bytes32(secret, "nsec"))


def encode_note(event_id: str) -> str:
    """Encode a 32-byte event id (hex) as ``note1...``."""
    return _bech32_encode("note", _bytes32(event_id, "note"))


def encode_nprofile(pubkey: str, relays: Sequence[str] = ()) -> str:
    """Encode a public key and optional relay hints as ``nprofile1...``."""
    entries = [(_TLV_SPECIAL, _bytes32(pubkey, "nprofile pubkey")), *_relay_entries(relays)]
    return _bech32_encode("nprofile", _tlv(entries))


def encode_nevent(
    event_id: str,
    relays: Sequence[str] = (),
    author: str | None = None,
    kind: int | None = None,
) -> str:
    """Encode an event id with optional relay hints, author and kind as ``nevent1...``."""
    entries = [(_TLV_SPECIAL, _bytes32(event_id, "nevent id")), *_relay_entries(relays)]
    if author is not None:
        entries.append((_TLV_AUTHOR, _bytes32(author, "nevent author")))
    if kind is not None:
        if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind < 2**32:
            raise Nip19Error("nevent kind must be an integer in [0, 2**32)")
        entries.append((_TLV_KIND, kind.to_bytes(4, "big")))
    return _bech32_encode("nevent", _tlv(entries))


def decode(text: str) -> Decoded:
    """Decode any supported NIP-19 string; unknown TLV entries are ignored, as NIP-19 asks."""
    prefix, payload = _bech32_decode(text)
    if prefix in _BARE_PREFIXES:
        return Decoded(prefix=prefix, data=_bytes32(payload, prefix).hex())
    if prefix == "nprofile":
        entries = _parse_tlv(payload)
        pubkey = _special(entries, prefix, "pubkey")
        return Decoded(prefix=prefix, data=pubkey.hex(), relays=_decode_relays(entries))
    if prefix == "nevent":
        entries = _parse_tlv(payload)
        event_id = _special(entries, prefix, "event id")
        author = None
        if _TLV_AUTHOR in entries:
            author = _bytes32(entries[_TLV_AUTHOR][0], "nevent author").hex()
        kind = None
        if _TLV_KIND in entries:
            raw_kind = entries[_TLV_KIND][0]
            if len(raw_kind) != 4:
                raise Nip19Error(f"nevent kind must be 4 bytes, got {len(raw_kind)}")
            kind = int.from_bytes(raw_kind, "big")
        return Decoded(
            prefix=prefix,
            data=event_id.hex(),
            relays=_decode_relays(entries),
            author=author,
            kind=kind,
        )
    raise Nip19Error(f"unknown prefix {prefix!r}")


def decode_pubkey(value: str) -> str:
    """Return the lowercase hex public key named by ``value`` (64 hex characters or an npub).

    Surrounding whitespace and a ``nostr:`` URI scheme are accepted. The key must be a
    point on secp256k1, so a mistyped key is caught here rather than at first use.
    """
    if not isinstance(value, str):
        raise Nip19Error("public key must be text")
    text = value.strip()
    text = text.removeprefix("nostr:")
    if _HEX64.fullmatch(text):
        raw = bytes.fromhex(text)
    elif text.lower().startswith("npub1"):
        raw = bytes.fromhex(decode(text).data)
    elif text.lower().startswith("nsec1"):
        raise Nip19Error("expected a public key, got an nsec secret key")
    else:
        raise Nip19Error("expected a public key as 64 hex characters or an npub")
    if not is_valid_public_key(raw):
        raise Nip19Error("not a valid secp256k1 public key")
    return raw.hex()
