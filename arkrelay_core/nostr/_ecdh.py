"""Unhashed secp256k1 ECDH, the shared secret of both NIP-04 and NIP-44.

Both NIPs need the raw x coordinate of ``secret * peer``. coincurve's ``ecdh()`` returns a
sha256 of the point instead, and its ``PublicKey.multiply`` uses libsecp256k1's
variable-time tweak multiplication, which is the wrong tool for a long-lived service key
that strangers can make us multiply with. OpenSSL's ECDH (via ``cryptography``) is
constant-time and returns exactly the x coordinate (SEC 1), so we use that.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from arkrelay_core.nostr.errors import InvalidKeyError

__all__ = ["parse_public_key", "shared_x"]

_CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


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
    scalar = int.from_bytes(secret, "big")
    if not 0 < scalar < _CURVE_ORDER:
        raise InvalidKeyError("secret key is not in [1, n-1]")
    peer = parse_public_key(peer_pubkey)
    try:
        # The even-y lift (prefix 02) is BIP340's; the x of the product is the same either way.
        point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), b"\x02" + peer)
    except ValueError as exc:
        raise InvalidKeyError("public key is not an x coordinate on secp256k1") from exc
    private = ec.derive_private_key(scalar, ec.SECP256K1())
    return private.exchange(ec.ECDH(), point)
