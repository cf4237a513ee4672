"""NIP-44 version 2 encrypted payloads (ChaCha20, HMAC-SHA256, HKDF; secp256k1 ECDH).

Follows https://github.com/nostr-protocol/nips/blob/master/44.md, including the extended
length prefix (``00 00`` + u32) for plaintexts of 65536 bytes or more. We always *read*
that form. We only *write* it when asked (``extended=True``): peers on older libraries
cannot read it, and the published test vectors still treat 65536 bytes as too long.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from arkrelay_core.nostr._ecdh import shared_x
from arkrelay_core.nostr.errors import (
    InvalidKeyError,
    InvalidMacError,
    InvalidPaddingError,
    InvalidPayloadError,
    InvalidPlaintextLengthError,
    UnsupportedVersionError,
)

__all__ = [
    "DEFAULT_MAX_PAYLOAD_LEN",
    "EXTENDED_PREFIX_THRESHOLD",
    "MAX_EXTENDED_PLAINTEXT_SIZE",
    "MAX_PLAINTEXT_SIZE",
    "MIN_PLAINTEXT_SIZE",
    "MessageKeys",
    "calc_padded_len",
    "conversation_key_from_shared_x",
    "decrypt",
    "encrypt",
    "get_conversation_key",
    "get_message_keys",
    "pad",
    "unpad",
]

VERSION = 2
SALT = b"nip44-v2"
MIN_PLAINTEXT_SIZE = 1
MAX_PLAINTEXT_SIZE = 65535
EXTENDED_PREFIX_THRESHOLD = 65536
MAX_EXTENDED_PLAINTEXT_SIZE = 2**32 - 1
# The NIP asks readers to cap payload size before base64-decoding. 1 MiB of base64 is
# beyond what public relays accept in one event, and keeps decryption to a few MiB of memory.
DEFAULT_MAX_PAYLOAD_LEN = 1 << 20

_MIN_PAYLOAD_LEN = 132  # base64 of the smallest payload: 1 + 32 + (2 + 32) + 32 bytes
_MIN_DATA_LEN = 99
_NONCE_LEN = 32
_MAC_LEN = 32


class MessageKeys(NamedTuple):
    """Per-message keys expanded from the conversation key and the nonce."""

    chacha_key: bytes
    chacha_nonce: bytes
    hmac_key: bytes


def get_conversation_key(secret: bytes, peer_pubkey: str | bytes) -> bytes:
    """Return the 32-byte conversation key of ``secret`` and the x-only ``peer_pubkey``.

    Symmetric: ``get_conversation_key(a, B) == get_conversation_key(b, A)``.
    Raises :class:`InvalidKeyError` for a secret outside [1, n-1] or a point not on the curve.
    """
    return conversation_key_from_shared_x(shared_x(secret, peer_pubkey))


def conversation_key_from_shared_x(shared: bytes) -> bytes:
    """HKDF-extract the conversation key from an already computed ECDH x coordinate."""
    return HKDF.extract(hashes.SHA256(), SALT, shared)


def _check_conversation_key(conversation_key: bytes) -> bytes:
    if not isinstance(conversation_key, bytes | bytearray) or len(conversation_key) != 32:
        raise InvalidKeyError("conversation key must be 32 bytes")
    return bytes(conversation_key)


def get_message_keys(conversation_key: bytes, nonce: bytes) -> MessageKeys:
    """Expand ``conversation_key`` with the 32-byte ``nonce`` into the three message keys."""
    key = _check_conversation_key(conversation_key)
    if len(nonce) != _NONCE_LEN:
        raise ValueError("nonce must be 32 bytes")
    okm = HKDFExpand(algorithm=hashes.SHA256(), length=76, info=bytes(nonce)).derive(key)
    return MessageKeys(chacha_key=okm[:32], chacha_nonce=okm[32:44], hmac_key=okm[44:76])


def calc_padded_len(unpadded_len: int) -> int:
    """Return the padded size of a plaintext of ``unpadded_len`` bytes (prefix excluded)."""
    if unpadded_len < MIN_PLAINTEXT_SIZE:
        raise InvalidPlaintextLengthError("plaintext must be at least 1 byte")
    if unpadded_len <= 32:
        return 32
    # floor(log2(n - 1)) + 1 in exact integer arithmetic.
    next_power = 1 << (unpadded_len - 1).bit_length()
    chunk = 32 if next_power <= 256 else next_power // 8
    return chunk * ((unpadded_len - 1) // chunk + 1)


def pad(plaintext: str, *, extended: bool = False) -> bytes:
    """Return the length-prefixed, zero-padded UTF-8 form of ``plaintext``."""
    try:
        unpadded = plaintext.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPayloadError("plaintext is not valid Unicode") from exc
    size = len(unpadded)
    limit = MAX_EXTENDED_PLAINTEXT_SIZE if extended else MAX_PLAINTEXT_SIZE
    if not MIN_PLAINTEXT_SIZE <= size <= limit:
        hint = "" if extended or size == 0 else " (extended=True allows up to 4 GiB)"
        raise InvalidPlaintextLengthError(
            f"plaintext must be {MIN_PLAINTEXT_SIZE}..{limit} bytes, got {size}{hint}"
        )
    if size >= EXTENDED_PREFIX_THRESHOLD:
        prefix = b"\x00\x00" + size.to_bytes(4, "big")
    else:
        prefix = size.to_bytes(2, "big")
    return prefix + unpadded + bytes(calc_padded_len(size) - size)


def unpad(padded: bytes) -> str:
    """Strip the length prefix and padding from a decrypted block and decode it."""
    if len(padded) < 2:
        raise InvalidPaddingError("padded plaintext is shorter than its length prefix")
    size = int.from_bytes(padded[:2], "big")
    prefix_len = 2
    if size == 0:
        if len(padded) < 6:
            raise InvalidPaddingError("extended length prefix is truncated")
        size = int.from_bytes(padded[2:6], "big")
        prefix_len = 6
        if size < EXTENDED_PREFIX_THRESHOLD:
            raise InvalidPaddingError(f"extended length prefix holds {size}, below 65536")
    unpadded = padded[prefix_len : prefix_len + size]
    if len(unpadded) != size or len(padded) != prefix_len + calc_padded_len(size):
        raise InvalidPaddingError("padding does not match the plaintext length")
    try:
        return unpadded.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayloadError("plaintext is not valid UTF-8") from exc


def _chacha20(keys: MessageKeys, data: bytes) -> bytes:
    # cryptography takes RFC 7539's 16-byte form: 4-byte little-endian counter, then nonce.
    algorithm = algorithms.ChaCha20(keys.chacha_key, b"\x00\x00\x00\x00" + keys.chacha_nonce)
    cipher = Cipher(algorithm, mode=None).encryptor()
    return cipher.update(data) + cipher.finalize()


def _mac(keys: MessageKeys, nonce: bytes, ciphertext: bytes) -> bytes:
    h = crypto_hmac.HMAC(keys.hmac_key, hashes.SHA256())
    h.update(nonce)
    h.update(ciphertext)
    return h.finalize()


def encrypt(
    plaintext: str,
    conversation_key: bytes,
    nonce: bytes | None = None,
    *,
    extended: bool = False,
) -> str:
    """Encrypt ``plaintext`` and return the base64 payload.

    ``nonce`` must be fresh random bytes in real use (the default); it is a parameter only
    so test vectors can be reproduced. ``extended`` allows plaintexts past 65535 bytes.
    """
    if nonce is None:
        nonce = os.urandom(_NONCE_LEN)
    keys = get_message_keys(conversation_key, nonce)
    ciphertext = _chacha20(keys, pad(plaintext, extended=extended))
    mac = _mac(keys, nonce, ciphertext)
    return base64.b64encode(bytes([VERSION]) + nonce + ciphertext + mac).decode("ascii")


def _decode_payload(payload: str, max_payload_len: int) -> tuple[bytes, bytes, bytes]:
    if not isinstance(payload, str):
        raise InvalidPayloadError("payload must be text")
    size = len(payload)
    if size and payload[0] == "#":
        raise UnsupportedVersionError("payload uses a non-base64 encoding we do not support")
    if size < _MIN_PAYLOAD_LEN:
        raise InvalidPayloadError(f"payload is {size} characters, at least 132 are needed")
    if size > max_payload_len:
        raise InvalidPayloadError(f"payload is {size} characters, the limit is {max_payload_len}")
    try:
        data = base64.b64decode(payload.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise InvalidPayloadError("payload is not valid base64") from exc
    if len(data) < _MIN_DATA_LEN:
        raise InvalidPayloadError(f"payload decodes to {len(data)} bytes, at least 99 are needed")
    if data[0] != VERSION:
        raise UnsupportedVersionError(f"unsupported encryption version {data[0]}")
    return data[1:33], data[33:-_MAC_LEN], data[-_MAC_LEN:]


def decrypt(
    payload: str,
    conversation_key: bytes,
    *,
    max_payload_len: int = DEFAULT_MAX_PAYLOAD_LEN,
) -> str:
    """Authenticate and decrypt a base64 ``payload``; raises a :class:`DecryptError` subclass."""
    key = _check_conversation_key(conversation_key)
    nonce, ciphertext, mac = _decode_payload(payload, max_payload_len)
    keys = get_message_keys(key, nonce)
    if not hmac.compare_digest(_mac(keys, nonce, ciphertext), mac):
        raise InvalidMacError("payload MAC does not match")
    return unpad(_chacha20(keys, ciphertext))
