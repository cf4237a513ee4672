"""Sealing and opening one key: scrypt-derived AES-256-GCM, the pubkey as associated data."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..nostr.bip340 import xonly_public_key
from .model import (
    FILE_VERSION,
    NONCE_BYTES,
    KdfParams,
    KeyEntry,
    KeyFile,
    KeyFileError,
    ScryptCost,
    SecretBytes,
    ServiceKey,
    WrongPassphraseError,
)

_AAD_PREFIX = b"arkrelay-service-key-v1:"
_SALT_BYTES = 16
_SECRET_BYTES = 32
# Reading a file whose scrypt parameters would need more than this much memory is refused,
# so a tampered file cannot make unlock allocate gigabytes.
_MAX_SCRYPT_MEMORY = 1 << 30

__all__ = ["aad", "check_kdf", "check_structure", "derive", "open_entry", "seal", "xonly_pubkey"]


def xonly_pubkey(secret: bytes) -> str:
    return xonly_public_key(secret).hex()


def derive(passphrase: str, kdf: KdfParams) -> bytes:
    # NFC so the same passphrase typed on different systems gives the same bytes.
    normalized = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return Scrypt(salt=kdf.salt, length=32, n=kdf.n, r=kdf.r, p=kdf.p).derive(normalized)


def aad(pubkey: str) -> bytes:
    return _AAD_PREFIX + bytes.fromhex(pubkey)


def seal(secret: bytes, passphrase: str, *, created_at: int, cost: ScryptCost) -> KeyEntry:
    if problem := cost_problem(cost.n, cost.r, cost.p):
        raise ValueError(problem)
    kdf = KdfParams(name="scrypt", n=cost.n, r=cost.r, p=cost.p, salt=os.urandom(_SALT_BYTES))
    pubkey = xonly_pubkey(secret)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(derive(passphrase, kdf)).encrypt(nonce, secret, aad(pubkey))
    return KeyEntry(
        pubkey=pubkey,
        created_at=created_at,
        retire_at=None,
        kdf=kdf,
        nonce=nonce,
        ciphertext=ciphertext,
    )


def open_entry(path: Path, entry: KeyEntry, passphrase: str, *, first: bool) -> ServiceKey:
    try:
        secret = AESGCM(derive(passphrase, entry.kdf)).decrypt(
            entry.nonce, entry.ciphertext, aad(entry.pubkey)
        )
    except InvalidTag:
        if first:
            raise WrongPassphraseError(path) from None
        # The same passphrase opened the current key, so this entry was altered.
        raise KeyFileError(
            f"cannot decrypt key {entry.pubkey} in {path}: the entry is corrupted"
        ) from None
    if len(secret) != _SECRET_BYTES or xonly_pubkey(secret) != entry.pubkey:
        raise KeyFileError(f"{path}: entry {entry.pubkey} holds a different key; corrupted file")
    return ServiceKey(
        pubkey=entry.pubkey,
        secret=SecretBytes(secret),
        created_at=entry.created_at,
        retire_at=entry.retire_at,
    )


def cost_problem(n: int, r: int, p: int) -> str | None:
    if n < 2 or n & (n - 1) or r < 1 or not 1 <= p <= 16:
        return f"invalid scrypt parameters n={n} r={r} p={p}"
    if 128 * r * n > _MAX_SCRYPT_MEMORY:
        return f"scrypt parameters n={n} r={r} need more than {_MAX_SCRYPT_MEMORY >> 20} MiB"
    return None


def check_kdf(path: Path, kdf: KdfParams) -> None:
    if problem := cost_problem(kdf.n, kdf.r, kdf.p):
        raise KeyFileError(f"{path}: {problem}")
    if len(kdf.salt) < _SALT_BYTES:
        raise KeyFileError(f"{path}: scrypt salt shorter than {_SALT_BYTES} bytes")


def check_structure(path: Path, key_file: KeyFile) -> None:
    if key_file.version != FILE_VERSION:
        raise KeyFileError(
            f"{path}: unsupported key file version {key_file.version} (this gateway reads "
            f"version {FILE_VERSION})"
        )
    current = [entry for entry in key_file.keys if entry.retire_at is None]
    if len(current) != 1:
        raise KeyFileError(f"{path}: expected exactly one current key, found {len(current)}")
    pubkeys = [entry.pubkey for entry in key_file.keys]
    if len(set(pubkeys)) != len(pubkeys):
        raise KeyFileError(f"{path}: the same pubkey appears in more than one entry")
    for entry in key_file.keys:
        check_kdf(path, entry.kdf)
        if len(entry.ciphertext) != _SECRET_BYTES + 16:
            raise KeyFileError(f"{path}: entry {entry.pubkey} has a ciphertext of the wrong size")
