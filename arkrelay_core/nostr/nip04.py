"""NIP-04 encrypted direct messages (AES-256-CBC keyed by the raw ECDH x coordinate).

NIP-04 is deprecated in favour of NIP-44: it has no MAC, so a wrong key or tampered
content shows up only as a padding error or as garbage text. We keep it for wallets that
have not moved on.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from arkrelay_core.nostr._ecdh import shared_x
from arkrelay_core.nostr.errors import InvalidPaddingError, InvalidPayloadError

__all__ = ["IV_SEPARATOR", "decrypt", "decrypt_with_key", "encrypt", "encrypt_with_key"]

IV_SEPARATOR = "?iv="
_BLOCK = 16


def encrypt_with_key(key: bytes, plaintext: str) -> str:
    """Encrypt with an already computed shared key (the ECDH x coordinate)."""
    try:
        data = plaintext.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPayloadError("plaintext is not valid Unicode") from exc
    iv = os.urandom(_BLOCK)
    padder = padding.PKCS7(_BLOCK * 8).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES256(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return (
        base64.b64encode(ciphertext).decode("ascii")
        + IV_SEPARATOR
        + base64.b64encode(iv).decode("ascii")
    )


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise InvalidPayloadError(f"NIP-04 {what} is not valid base64") from exc


def decrypt_with_key(key: bytes, content: str) -> str:
    """Decrypt ``content`` with an already computed shared key."""
    if not isinstance(content, str):
        raise InvalidPayloadError("NIP-04 content must be text")
    ct_b64, sep, iv_b64 = content.partition(IV_SEPARATOR)
    if not sep:
        raise InvalidPayloadError("NIP-04 content has no '?iv=' part")
    ciphertext = _b64(ct_b64, "ciphertext")
    iv = _b64(iv_b64, "iv")
    if len(iv) != _BLOCK:
        raise InvalidPayloadError(f"NIP-04 iv must be 16 bytes, got {len(iv)}")
    if not ciphertext or len(ciphertext) % _BLOCK:
        raise InvalidPayloadError("NIP-04 ciphertext is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES256(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(_BLOCK * 8).unpadder()
    try:
        plaintext = unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise InvalidPaddingError("NIP-04 padding is invalid (wrong key or tampered)") from exc
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayloadError("NIP-04 plaintext is not valid UTF-8") from exc


def encrypt(secret: bytes, peer_pubkey: str | bytes, plaintext: str) -> str:
    """Encrypt ``plaintext`` from ``secret`` to the x-only ``peer_pubkey``.

    Returns ``base64(ciphertext) + "?iv=" + base64(iv)``.
    """
    return encrypt_with_key(shared_x(secret, peer_pubkey), plaintext)


def decrypt(secret: bytes, peer_pubkey: str | bytes, content: str) -> str:
    """Decrypt NIP-04 ``content`` sent between ``secret`` and ``peer_pubkey``."""
    return decrypt_with_key(shared_x(secret, peer_pubkey), content)
