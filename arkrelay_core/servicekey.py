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

import contextlib
import enum
import fcntl
import hmac
import logging
import math
import os
import stat
import tempfile
import time
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .nostr.bip340 import generate_secret_key, xonly_public_key

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

PASSPHRASE_ENV = "ARKRELAY_KEY_PASSPHRASE"
FILE_VERSION = 1
_AAD_PREFIX = b"arkrelay-service-key-v1:"
_SALT_BYTES = 16
_NONCE_BYTES = 12
_SECRET_BYTES = 32
# Reading a file whose scrypt parameters would need more than this much memory is refused,
# so a tampered file cannot make unlock allocate gigabytes.
_MAX_SCRYPT_MEMORY = 1 << 30


# --------------------------------------------------------------------------------------------
# Errors


class ServiceKeyError(Exception):
    """Root of the service-key errors; ``str()`` is one line fit for an operator."""


class PassphraseError(ServiceKeyError):
    """No usable passphrase was given."""


class KeyFileError(ServiceKeyError):
    """The key file is missing, unreadable, malformed, or in the way of a new one."""


class WrongPassphraseError(KeyFileError):
    """The passphrase does not open the file (or the file was altered)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"cannot decrypt {path}: wrong passphrase ({PASSPHRASE_ENV}) or corrupted file"
        )


# --------------------------------------------------------------------------------------------
# File format

_Hex32 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class KdfParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How an entry's AES key was derived from the passphrase."""

    name: Literal["scrypt"]
    n: int
    r: int
    p: int
    salt: bytes


class KeyEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One encrypted key. ``retire_at`` is None for the current key."""

    pubkey: _Hex32
    created_at: int
    retire_at: int | None
    kdf: KdfParams
    nonce: Annotated[bytes, msgspec.Meta(min_length=_NONCE_BYTES, max_length=_NONCE_BYTES)]
    ciphertext: bytes

    @property
    def info(self) -> KeyInfo:
        return KeyInfo(pubkey=self.pubkey, created_at=self.created_at, retire_at=self.retire_at)


class KeyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole key file; the newest entry comes first."""

    version: int
    keys: tuple[KeyEntry, ...]

    @property
    def current(self) -> KeyEntry:
        return next(entry for entry in self.keys if entry.retire_at is None)

    def listening(self, now: float) -> tuple[KeyEntry, ...]:
        """The current key, then rotated-out keys whose grace period has not ended."""
        retiring = [e for e in self.keys if e.retire_at is not None and e.retire_at > now]
        return (self.current, *retiring)


class ScryptCost(msgspec.Struct, frozen=True):
    """scrypt work factors for newly sealed keys."""

    n: int = 2**15
    r: int = 8
    p: int = 1


DEFAULT_SCRYPT_COST = ScryptCost()


class KeyState(enum.StrEnum):
    CURRENT = "current"
    RETIRING = "retiring"  # rotated out, still listened on until retire_at
    RETIRED = "retired"  # past retire_at; dropped from the file at the next rotation


class KeyInfo(msgspec.Struct, frozen=True):
    """Public facts about one key: no secret, no passphrase needed."""

    pubkey: str
    created_at: int
    retire_at: int | None

    def state(self, now: float | None = None) -> KeyState:
        if self.retire_at is None:
            return KeyState.CURRENT
        return KeyState.RETIRING if self.retire_at > _now(now) else KeyState.RETIRED


# --------------------------------------------------------------------------------------------
# Unlocked keys


class SecretBytes:
    """Secret key material that never shows itself in ``repr``, ``str`` or logs."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)

    def reveal(self) -> bytes:
        return self._data

    def __repr__(self) -> str:
        return "SecretBytes(***)"

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretBytes):
            return NotImplemented
        return hmac.compare_digest(self._data, other._data)

    def __hash__(self) -> int:
        return hash((SecretBytes, self._data))

    def __reduce__(self) -> object:
        raise TypeError("SecretBytes cannot be pickled")


@dataclass(frozen=True, slots=True)
class ServiceKey:
    """One decrypted key: x-only public key (hex) and its secret."""

    pubkey: str
    secret: SecretBytes
    created_at: int
    retire_at: int | None


@dataclass(frozen=True, slots=True)
class ServiceKeys:
    """What `unlock` gives the gateway: the key it signs with, and every key it reads for."""

    current: ServiceKey
    listening: tuple[ServiceKey, ...]

    def for_pubkey(self, pubkey: str) -> ServiceKey | None:
        """The listening key with this x-only public key (hex), if any."""
        return next((key for key in self.listening if key.pubkey == pubkey), None)


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
        raise _exists_error(path)
    entry = _seal(generate_secret_key(), passphrase, created_at=int(_now(now)), cost=cost)
    _write(path, KeyFile(version=FILE_VERSION, keys=(entry,)), replace=False)
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
    _check_structure(path, key_file)
    return key_file


def unlock(path: Path, passphrase: str, *, now: float | None = None) -> ServiceKeys:
    """Decrypt the current key and every rotated-out key still in its grace period."""
    key_file = read_key_file(path)
    entries = key_file.listening(_now(now))
    current = _open(path, entries[0], passphrase, first=True)
    others = tuple(_open(path, entry, passphrase, first=False) for entry in entries[1:])
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
    with _exclusive(path):
        return _rotate_locked(path, passphrase, grace_seconds, moment, cost)


def _rotate_locked(
    path: Path, passphrase: str, grace_seconds: float, moment: int, cost: ScryptCost
) -> KeyInfo:
    key_file = read_key_file(path)
    old = key_file.current
    # Proves the passphrase before anything changes, so every entry stays under one passphrase.
    _open(path, old, passphrase, first=True)
    new = _seal(generate_secret_key(), passphrase, created_at=moment, cost=cost)
    retired = msgspec.structs.replace(old, retire_at=moment + math.ceil(grace_seconds))
    kept = [
        entry
        for entry in (retired, *key_file.keys)
        if entry.retire_at is not None and entry.retire_at > moment
    ]
    _write(path, KeyFile(version=FILE_VERSION, keys=(new, *kept)), replace=True)
    logger.info(
        "rotated service key in %s: new pubkey %s, old pubkey %s listens until %d",
        path,
        new.pubkey,
        old.pubkey,
        retired.retire_at,
    )
    return new.info


# --------------------------------------------------------------------------------------------
# Internals


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _check_passphrase(passphrase: str) -> None:
    if not passphrase:
        raise PassphraseError("the service key passphrase must not be empty")


def _xonly_pubkey(secret: bytes) -> str:
    return xonly_public_key(secret).hex()


def _derive(passphrase: str, kdf: KdfParams) -> bytes:
    # NFC so the same passphrase typed on different systems gives the same bytes.
    normalized = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return Scrypt(salt=kdf.salt, length=32, n=kdf.n, r=kdf.r, p=kdf.p).derive(normalized)


def _aad(pubkey: str) -> bytes:
    return _AAD_PREFIX + bytes.fromhex(pubkey)


def _seal(secret: bytes, passphrase: str, *, created_at: int, cost: ScryptCost) -> KeyEntry:
    if problem := _cost_problem(cost.n, cost.r, cost.p):
        raise ValueError(problem)
    kdf = KdfParams(name="scrypt", n=cost.n, r=cost.r, p=cost.p, salt=os.urandom(_SALT_BYTES))
    pubkey = _xonly_pubkey(secret)
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(_derive(passphrase, kdf)).encrypt(nonce, secret, _aad(pubkey))
    return KeyEntry(
        pubkey=pubkey,
        created_at=created_at,
        retire_at=None,
        kdf=kdf,
        nonce=nonce,
        ciphertext=ciphertext,
    )


def _open(path: Path, entry: KeyEntry, passphrase: str, *, first: bool) -> ServiceKey:
    try:
        secret = AESGCM(_derive(passphrase, entry.kdf)).decrypt(
            entry.nonce, entry.ciphertext, _aad(entry.pubkey)
        )
    except InvalidTag:
        if first:
            raise WrongPassphraseError(path) from None
        # The same passphrase opened the current key, so this entry was altered.
        raise KeyFileError(
            f"cannot decrypt key {entry.pubkey} in {path}: the entry is corrupted"
        ) from None
    if len(secret) != _SECRET_BYTES or _xonly_pubkey(secret) != entry.pubkey:
        raise KeyFileError(f"{path}: entry {entry.pubkey} holds a different key; corrupted file")
    return ServiceKey(
        pubkey=entry.pubkey,
        secret=SecretBytes(secret),
        created_at=entry.created_at,
        retire_at=entry.retire_at,
    )


def _cost_problem(n: int, r: int, p: int) -> str | None:
    if n < 2 or n & (n - 1) or r < 1 or not 1 <= p <= 16:
        return f"invalid scrypt parameters n={n} r={r} p={p}"
    if 128 * r * n > _MAX_SCRYPT_MEMORY:
        return f"scrypt parameters n={n} r={r} need more than {_MAX_SCRYPT_MEMORY >> 20} MiB"
    return None


def _check_kdf(path: Path, kdf: KdfParams) -> None:
    if problem := _cost_problem(kdf.n, kdf.r, kdf.p):
        raise KeyFileError(f"{path}: {problem}")
    if len(kdf.salt) < _SALT_BYTES:
        raise KeyFileError(f"{path}: scrypt salt shorter than {_SALT_BYTES} bytes")


def _check_structure(path: Path, key_file: KeyFile) -> None:
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
        _check_kdf(path, entry.kdf)
        if len(entry.ciphertext) != _SECRET_BYTES + 16:
            raise KeyFileError(f"{path}: entry {entry.pubkey} has a ciphertext of the wrong size")


def _write(path: Path, key_file: KeyFile, *, replace: bool) -> None:
    """Write atomically with mode 0600: temp file, fsync, then rename (or link, to not clobber)."""
    data = msgspec.json.format(msgspec.json.encode(key_file), indent=2) + b"\n"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            tmp.replace(path)
        else:
            # link() fails if the target exists, unlike rename(): no window to clobber a key.
            os.link(tmp, path)
            tmp.unlink()
        _fsync_dir(path.parent)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise _exists_error(path) from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock beside ``path`` so two rotations never read the same old file."""
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot lock {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _exists_error(path: Path) -> KeyFileError:
    return KeyFileError(
        f"{path} already exists; refusing to overwrite a key file "
        "(use 'arkrelay keys rotate' to replace the key)"
    )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
