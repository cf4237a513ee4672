"""What a service key file holds, the errors reading it raises, and holders for secrets."""

from __future__ import annotations

import enum
import hmac
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import msgspec

__all__ = [
    "DEFAULT_SCRYPT_COST",
    "FILE_VERSION",
    "NONCE_BYTES",
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
]

PASSPHRASE_ENV = "ARKRELAY_KEY_PASSPHRASE"
FILE_VERSION = 1
#: AES-GCM nonce size, fixed by the file format.
NONCE_BYTES = 12


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
    nonce: Annotated[bytes, msgspec.Meta(min_length=NONCE_BYTES, max_length=NONCE_BYTES)]
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
        return (
            KeyState.RETIRING
            if self.retire_at > (time.time() if now is None else now)
            else KeyState.RETIRED
        )


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
