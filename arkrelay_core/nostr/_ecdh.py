"""Unhashed secp256k1 ECDH, the shared secret of both NIP-04 and NIP-44.

Both NIPs need the raw x coordinate of ``secret * peer``. libsecp256k1's ``secp256k1_ecdh``
multiplies in constant time (``ecmult_const``), which a long-lived service key that
strangers make us multiply with needs; ``PublicKey.multiply`` would not do (it is a
variable-time tweak). By default ``secp256k1_ecdh`` hashes the point, and coincurve's
``ecdh()`` exposes only that default, so we call the library through coincurve's binding
with a hash function that hands back x as it is. That is 20-30 times faster than the same
product through OpenSSL.
"""

from __future__ import annotations

from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from arkrelay_core.nostr.errors import InvalidKeyError

__all__ = ["parse_public_key", "shared_x"]

_CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@ffi.callback("secp256k1_ecdh_hash_function")
def _copy_x(output: object, x32: object, _y32: object, _data: object) -> int:
    ffi.memmove(output, x32, 32)
    return 1


def parse_public_key(pubkey: str | bytes) -> bytes:
    """Return a 32-byte x-only public key given as bytes or 64 hex characters."""
    if isinstance(pubkey, str):
        try:
            raw = bytes.fromhex(pubkey)
        except ValueError as exc:
            raise InvalidKeyError("public key is not hex") from exc
    elif isinstance(pubkey, bytes | bytearray):
        raw = bytes(pubkey)
    else:
        raise InvalidKeyError("public key must be hex text or bytes")
    if len(raw) != 32:
        raise InvalidKeyError(f"public key must be 32 bytes, got {len(raw)}")
    return raw


def shared_x(secret: bytes, peer_pubkey: str | bytes) -> bytes:
    """Return the 32-byte x coordinate of ``secret * lift_x(peer_pubkey)``."""
    if not isinstance(secret, bytes | bytearray) or len(secret) != 32:
        raise InvalidKeyError("secret key must be 32 bytes")
    if not 0 < int.from_bytes(secret, "big") < _CURVE_ORDER:
        raise InvalidKeyError("secret key is not in [1, n-1]")
    peer = parse_public_key(peer_pubkey)
    ctx = GLOBAL_CONTEXT.ctx
    point = ffi.new("secp256k1_pubkey *")
    # The even-y lift (prefix 02) is BIP340's; the x of the product is the same either way.
    if not lib.secp256k1_ec_pubkey_parse(ctx, point, b"\x02" + peer, 33):
        raise InvalidKeyError("public key is not an x coordinate on secp256k1")
    output = ffi.new("unsigned char[32]")
    if not lib.secp256k1_ecdh(ctx, output, point, bytes(secret), _copy_x, ffi.NULL):
        raise InvalidKeyError("ECDH failed (secret key out of range)")
    return ffi.buffer(output, 32)[:]
