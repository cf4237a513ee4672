"""Ark addresses (version 0): bech32m of [version, server key, VTXO taproot key].

The format of ark-lib's ``Address.EncodeV0`` / ``DecodeAddressV0`` (arkd v0.9.15,
``pkg/ark-lib/encoding.go``) and @arkade-os/sdk's ``ArkAddress``: human-readable part
``ark`` on mainnet and ``tark`` on every test network (``pkg/ark-lib/network.go``), data
the version byte then two x-only keys, the server's signer key and the output key of the
owner's VTXO script. The string is longer than BIP-173's 90 characters, so decoding here
does not apply that cap (as ark-lib's ``DecodeNoLimit``). The checksum arithmetic is
embit's.
"""

from __future__ import annotations

import dataclasses

from embit import bech32

__all__ = ["ArkAddress", "ArkAddressError", "decode", "encode", "hrp_for"]

VERSION = 0
_HRPS = {"bitcoin": "ark"}
_TEST_HRP = "tark"
#: Long enough for any Ark address; bounds the work on hostile input.
_MAX_LENGTH = 1023


class ArkAddressError(ValueError):
    """Not an Ark address this module understands (the text says why)."""


@dataclasses.dataclass(frozen=True)
class ArkAddress:
    hrp: str
    server_key: bytes  # x-only, the server's signer key
    vtxo_key: bytes  # x-only, the taproot output key of the owner's VTXO script
    version: int = VERSION

    @property
    def pk_script(self) -> bytes:
        """The P2TR pkScript a payment to this address creates."""
        return b"\x51\x20" + self.vtxo_key

    def encode(self) -> str:
        return encode(self.server_key, self.vtxo_key, self.hrp)


def hrp_for(network: str) -> str:
    """The address prefix arkd uses on ``network`` (ark-lib's Network.Addr)."""
    return _HRPS.get(network, _TEST_HRP)


def encode(server_key: bytes, vtxo_key: bytes, hrp: str) -> str:
    if len(server_key) != 32 or len(vtxo_key) != 32:
        raise ArkAddressError("an Ark address carries two 32-byte x-only keys")
    words = bech32.convertbits(bytes([VERSION]) + server_key + vtxo_key, 8, 5)
    assert words is not None  # 8-to-5 with padding always converts
    return bech32.bech32_encode(bech32.Encoding.BECH32M, hrp, words)


def decode(address: str) -> ArkAddress:
    if not 8 <= len(address) <= _MAX_LENGTH:
        raise ArkAddressError("not an Ark address: bad length")
    if address.lower() != address and address.upper() != address:
        raise ArkAddressError("not an Ark address: mixed case")
    text = address.lower()
    hrp, sep, data = text.rpartition("1")
    if not sep or not hrp or len(data) < 6:
        raise ArkAddressError("not an Ark address: no separator or checksum")
    if hrp not in ("ark", _TEST_HRP):
        raise ArkAddressError(f"unknown prefix {hrp!r}")
    try:
        words = [bech32.CHARSET.index(c) for c in data]
    except ValueError as exc:
        raise ArkAddressError("not an Ark address: character outside bech32") from exc
    if bech32.bech32_verify_checksum(hrp, words) != bech32.Encoding.BECH32M:
        raise ArkAddressError("not an Ark address: bad bech32m checksum")
    raw = bech32.convertbits(words[:-6], 5, 8, False)
    if raw is None or len(raw) != 65:
        raise ArkAddressError(
            f"invalid address bytes length, expected 65 got {len(raw) if raw else 0}"
        )
    if raw[0] != VERSION:
        raise ArkAddressError(f"invalid address version, expected 0 got {raw[0]}")
    return ArkAddress(hrp, bytes(raw[1:33]), bytes(raw[33:]), raw[0])
