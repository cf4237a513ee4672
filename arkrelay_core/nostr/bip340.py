"""BIP340 Schnorr keys and signatures over secp256k1, backed by libsecp256k1 (coincurve)."""

from __future__ import annotations

import os

import coincurve

from arkrelay_core.nostr.errors import KeyFormatError

__all__ = [
    "generate_secret_key",
    "is_valid_public_key",
    "schnorr_sign",
    "schnorr_verify",
    "xonly_public_key",
]


def _check_secret(secret: bytes) -> bytes:
    # coincurve left-pads short secrets with zeros; a truncated key must be an error instead.
    if not isinstance(secret, bytes | bytearray) or len(secret) != 32:
        raise KeyFormatError("secret key must be 32 bytes")
    return bytes(secret)


def generate_secret_key() -> bytes:
    """Return a fresh random secret key (32 bytes, a valid scalar)."""
    return coincurve.PrivateKey().secret


def xonly_public_key(secret: bytes) -> bytes:
    """Return the 32-byte x-only public key of ``secret``."""
    try:
        return coincurve.PublicKeyXOnly.from_secret(_check_secret(secret)).format()
    except ValueError as exc:
        raise KeyFormatError("secret key is not a valid secp256k1 scalar") from exc


def is_valid_public_key(pubkey32: bytes) -> bool:
    """Return whether ``pubkey32`` is the x coordinate of a point on secp256k1."""
    if not isinstance(pubkey32, bytes | bytearray) or len(pubkey32) != 32:
        return False
    try:
        coincurve.PublicKeyXOnly(bytes(pubkey32))
    except ValueError:
        return False
    return True


def schnorr_sign(secret: bytes, msg32: bytes, aux_rand: bytes | None = None) -> bytes:
    """Sign the 32-byte ``msg32``; ``aux_rand`` defaults to fresh randomness (BIP340 advice)."""
    if not isinstance(msg32, bytes | bytearray) or len(msg32) != 32:
        raise ValueError("message must be 32 bytes")
    if aux_rand is None:
        aux_rand = os.urandom(32)
    elif len(aux_rand) != 32:
        raise ValueError("aux_rand must be 32 bytes")
    try:
        key = coincurve.PrivateKey(_check_secret(secret))
    except ValueError as exc:
        raise KeyFormatError("secret key is not a valid secp256k1 scalar") from exc
    return key.sign_schnorr(bytes(msg32), bytes(aux_rand))


def schnorr_verify(pubkey32: bytes, msg32: bytes, sig64: bytes) -> bool:
    """Return whether ``sig64`` is a valid signature of ``msg32`` by ``pubkey32``.

    Any malformed input (wrong type or length, a public key off the curve) yields ``False``.
    """
    for value, size in ((pubkey32, 32), (msg32, 32), (sig64, 64)):
        if not isinstance(value, bytes | bytearray) or len(value) != size:
            return False
    try:
        key = coincurve.PublicKeyXOnly(bytes(pubkey32))
        return key.verify(bytes(sig64), bytes(msg32))
    except ValueError:
        return False
