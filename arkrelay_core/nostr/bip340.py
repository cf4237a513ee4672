"""BIP340 Schnorr keys and signatures over secp256k1, backed by libsecp256k1 (coincurve).

Signing goes through :class:`SigningKey`, which builds libsecp256k1's keypair (secret and
public point) once. coincurve's ``PrivateKey`` derives the public key when it is made, and
its ``sign_schnorr`` builds the keypair again and verifies its own signature on every
call: about four times the cost of the signature itself. Functions that take raw secret
bytes look the prepared key up in a small LRU cache, so callers that keep bytes (wallets,
simulators) pay the preparation once per key, not once per signature.

Like libsecp256k1 (and unlike coincurve), we do not verify our own signatures: that check
guards against hardware faults during signing at the price of one verification per
signature, and BIP340 leaves it to the signer when the cost matters.
"""

from __future__ import annotations

import functools
import os

import coincurve
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from arkrelay_core.nostr.errors import KeyFormatError

__all__ = [
    "PREPARED_KEY_CACHE_SIZE",
    "SigningKey",
    "generate_secret_key",
    "is_valid_public_key",
    "schnorr_sign",
    "schnorr_verify",
    "signing_key",
    "xonly_public_key",
]

#: Bound of each key cache (prepared secrets, parsed public keys): about 0.5 KiB an entry.
PREPARED_KEY_CACHE_SIZE = 1024


def _check_secret(secret: bytes) -> bytes:
    # coincurve left-pads short secrets with zeros; a truncated key must be an error instead.
    if not isinstance(secret, bytes | bytearray) or len(secret) != 32:
        raise KeyFormatError("secret key must be 32 bytes")
    return bytes(secret)


class SigningKey:
    """A secret key made ready for any number of BIP340 signatures, with its public key.

    Never shows the secret in ``repr`` and cannot be pickled.
    """

    __slots__ = ("_keypair", "_secret", "public_key", "public_key_hex")

    def __init__(self, secret: bytes) -> None:
        secret = _check_secret(secret)
        ctx = GLOBAL_CONTEXT.ctx
        keypair = ffi.new("secp256k1_keypair *")
        if not lib.secp256k1_keypair_create(ctx, keypair, secret):
            raise KeyFormatError("secret key is not a valid secp256k1 scalar")
        xonly = ffi.new("secp256k1_xonly_pubkey *")
        serialized = ffi.new("unsigned char[32]")
        lib.secp256k1_keypair_xonly_pub(ctx, xonly, ffi.NULL, keypair)
        lib.secp256k1_xonly_pubkey_serialize(ctx, serialized, xonly)
        self._keypair = keypair
        self._secret = secret
        #: The 32-byte x-only public key, and its lowercase hex (a Nostr pubkey).
        self.public_key: bytes = ffi.buffer(serialized, 32)[:]
        self.public_key_hex: str = self.public_key.hex()

    @property
    def secret(self) -> bytes:
        return self._secret

    def sign(self, msg32: bytes, aux_rand: bytes | None = None) -> bytes:
        """Sign the 32-byte ``msg32``; ``aux_rand`` defaults to fresh randomness (BIP340 advice)."""
        if not isinstance(msg32, bytes | bytearray) or len(msg32) != 32:
            raise ValueError("message must be 32 bytes")
        if aux_rand is None:
            aux_rand = os.urandom(32)
        elif len(aux_rand) != 32:
            raise ValueError("aux_rand must be 32 bytes")
        signature = ffi.new("unsigned char[64]")
        if not lib.secp256k1_schnorrsig_sign32(
            GLOBAL_CONTEXT.ctx, signature, bytes(msg32), self._keypair, bytes(aux_rand)
        ):
            raise ValueError("BIP340 signing failed")
        return ffi.buffer(signature, 64)[:]

    def __repr__(self) -> str:
        return f"SigningKey(pubkey={self.public_key_hex})"

    def __reduce__(self) -> object:
        raise TypeError("SigningKey cannot be pickled")


@functools.lru_cache(maxsize=PREPARED_KEY_CACHE_SIZE)
def _prepared(secret: bytes) -> SigningKey:
    return SigningKey(secret)


def signing_key(secret: bytes | SigningKey) -> SigningKey:
    """Return ``secret`` prepared for signing (itself if it already is a :class:`SigningKey`)."""
    if isinstance(secret, SigningKey):
        return secret
    return _prepared(_check_secret(secret))


def generate_secret_key() -> bytes:
    """Return a fresh random secret key (32 bytes, a valid scalar)."""
    return coincurve.PrivateKey().secret


def xonly_public_key(secret: bytes | SigningKey) -> bytes:
    """Return the 32-byte x-only public key of ``secret``."""
    return signing_key(secret).public_key


@functools.lru_cache(maxsize=PREPARED_KEY_CACHE_SIZE)
def _parsed_public_key(pubkey32: bytes) -> object | None:
    # Parsing lifts x to a point (a square root), a fifth of a verification; peers recur.
    parsed = ffi.new("secp256k1_xonly_pubkey *")
    if not lib.secp256k1_xonly_pubkey_parse(GLOBAL_CONTEXT.ctx, parsed, pubkey32):
        return None
    return parsed


def is_valid_public_key(pubkey32: bytes) -> bool:
    """Return whether ``pubkey32`` is the x coordinate of a point on secp256k1."""
    if not isinstance(pubkey32, bytes | bytearray) or len(pubkey32) != 32:
        return False
    return _parsed_public_key(bytes(pubkey32)) is not None


def schnorr_sign(secret: bytes | SigningKey, msg32: bytes, aux_rand: bytes | None = None) -> bytes:
    """Sign the 32-byte ``msg32``; ``aux_rand`` defaults to fresh randomness (BIP340 advice)."""
    if not isinstance(msg32, bytes | bytearray) or len(msg32) != 32:
        raise ValueError("message must be 32 bytes")
    return signing_key(secret).sign(msg32, aux_rand)


def schnorr_verify(pubkey32: bytes, msg32: bytes, sig64: bytes) -> bool:
    """Return whether ``sig64`` is a valid signature of ``msg32`` by ``pubkey32``.

    Any malformed input (wrong type or length, a public key off the curve) yields ``False``.
    """
    for value, size in ((pubkey32, 32), (msg32, 32), (sig64, 64)):
        if not isinstance(value, bytes | bytearray) or len(value) != size:
            return False
    parsed = _parsed_public_key(bytes(pubkey32))
    if parsed is None:
        return False
    return bool(
        lib.secp256k1_schnorrsig_verify(GLOBAL_CONTEXT.ctx, bytes(sig64), bytes(msg32), 32, parsed)
    )
