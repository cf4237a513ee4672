"""The gateway's service key (its Nostr identity), encrypted at rest.

The key file is JSON holding one current key and any rotated-out keys still in their grace
period. Each secret is sealed with AES-256-GCM under a key derived by scrypt from the
passphrase in ``ARKRELAY_KEY_PASSPHRASE``; the scrypt parameters and salt sit beside each
entry so they can be raised later, and the entry's public key is the GCM associated data, so
moving a ciphertext to another entry fails authentication.

    ServiceKeyError
    ├── PassphraseError          ARKRELAY_KEY_PASSPHRASE unset or empty
    └── KeyFileError             missing, unreadable, malformed or already-existing file
        └── WrongPassphraseError     the current key does not decrypt
"""

from __future__ import annotations

import logging
import math
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec

from ..nostr.bip340 import generate_secret_key
from .model import (
    DEFAULT_SCRYPT_COST,
    FILE_VERSION,
    PASSPHRASE_ENV,
    KdfParams,
    KeyEntry,
    KeyFile,
    KeyFileError,
    KeyInfo,
    KeyState,
    PassphraseError,
    ScryptCost,
    SecretBytes,
    ServiceKey,
    ServiceKeyError,
    ServiceKeys,
    WrongPassphraseError,
)
from .sealing import check_structure, open_entry, seal
from .storage import exclusive, exists_error, write

__all__ = [
    "DEFAULT_SCRYPT_COST",
    "PASSPHRASE_ENV",
    "KdfParams",
    "KeyEntry",
    "KeyFile",
    "KeyFileError",
    "KeyInfo",
    "KeyState",
    "PassphraseError",
    "ScryptCost",
    "SecretBytes",
    "ServiceKey",
    "ServiceKeyError",
    "ServiceKeys",
    "WrongPassphraseError",
    "create_key_file",
    "passphrase_from_env",
    "read_key_file",
    "rotate",
    "unlock",
]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Operations


def passphrase_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The key file passphrase from ``ARKRELAY_KEY_PASSPHRASE``; `PassphraseError` if unset."""
    value = (os.environ if environ is None else environ).get(PASSPHRASE_ENV)
    if value is None:
        raise PassphraseError(
            f"{PASSPHRASE_ENV} is not set; export the passphrase that protects the service key"
        )
    if not value:
        raise PassphraseError(f"{PASSPHRASE_ENV} is empty; the service key needs a passphrase")
    return value


def create_key_file(
    path: Path,
    passphrase: str,
    *,
    now: float | None = None,
    cost: ScryptCost = DEFAULT_SCRYPT_COST,
) -> KeyInfo:
    """Create ``path`` holding one fresh key; never overwrites an existing file."""
    _check_passphrase(passphrase)
    if path.exists():
        raise exists_error(path)
    entry = seal(generate_secret_key(), passphrase, created_at=int(_now(now)), cost=cost)
    write(path, KeyFile(version=FILE_VERSION, keys=(entry,)), replace=False)
    logger.info("created service key file %s (pubkey %s)", path, entry.pubkey)
    return entry.info


def read_key_file(path: Path) -> KeyFile:
    """Read and check ``path`` without decrypting anything."""
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(
            f"{path}: no such key file (create one with 'arkrelay keys new')"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "%s is accessible to other users (mode %o); run chmod 600", path, mode & 0o777
        )
    try:
        key_file = msgspec.json.decode(raw, type=KeyFile)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise KeyFileError(f"{path}: not a valid service key file: {exc}") from None
    check_structure(path, key_file)
    return key_file


def unlock(path: Path, passphrase: str, *, now: float | None = None) -> ServiceKeys:
    """Decrypt the current key and every rotated-out key still in its grace period."""
    key_file = read_key_file(path)
    entries = key_file.listening(_now(now))
    current = open_entry(path, entries[0], passphrase, first=True)
    others = tuple(open_entry(path, entry, passphrase, first=False) for entry in entries[1:])
    return ServiceKeys(current=current, listening=(current, *others))


def rotate(
    path: Path,
    passphrase: str,
    grace_seconds: float,
    *,
    now: float | None = None,
    cost: ScryptCost = DEFAULT_SCRYPT_COST,
) -> KeyInfo:
    """Make a fresh current key; the old one keeps listening for ``grace_seconds``.

    Keys whose grace period has ended are dropped from the file.
    """
    if not math.isfinite(grace_seconds) or grace_seconds < 0:
        raise ValueError(f"grace_seconds must be finite and not negative, got {grace_seconds!r}")
    moment = int(_now(now))
    with exclusive(path):
        return _rotate_locked(path, passphrase, grace_seconds, moment, cost)


def _rotate_locked(
    path: Path, passphrase: str, grace_seconds: float, moment: int, cost: ScryptCost
) -> KeyInfo:
    key_file = read_key_file(path)
    old = key_file.current
    # Proves the passphrase before anything changes, so every entry stays under one passphrase.
    open_entry(path, old, passphrase, first=True)
    new = seal(generate_secret_key(), passphrase, created_at=moment, cost=cost)
    retired = msgspec.structs.replace(old, retire_at=moment + math.ceil(grace_seconds))
    kept = [
        entry
        for entry in (retired, *key_file.keys)
        if entry.retire_at is not None and entry.retire_at > moment
    ]
    write(path, KeyFile(version=FILE_VERSION, keys=(new, *kept)), replace=True)
    logger.info(
        "rotated service key in %s: new pubkey %s, old pubkey %s listens until %d",
        path,
        new.pubkey,
        old.pubkey,
        retired.retire_at,
    )
    return new.info


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _check_passphrase(passphrase: str) -> None:
    if not passphrase:
        raise PassphraseError("the service key passphrase must not be empty")
