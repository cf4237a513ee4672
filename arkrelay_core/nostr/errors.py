"""Exceptions raised by the Nostr primitives.

The whole tree::

    NostrError
    ├── KeyFormatError        a secret or public key is malformed or off the curve
    ├── EventError            an event that cannot be parsed or serialised (code 1001)
    ├── Nip19Error            a bech32 / NIP-19 string that cannot be decoded or encoded
    └── DecryptError          NIP-04 / NIP-44 content we cannot read or write (code 1007)
        ├── UnsupportedVersionError      NIP-44 version byte (or a leading "#") we do not speak
        ├── InvalidPayloadError          not base64, too short or too long, not UTF-8 inside
        ├── InvalidMacError              the NIP-44 MAC does not match: wrong key or tampering
        ├── InvalidPaddingError          NIP-44 length prefix / padding or NIP-04 PKCS#7 is wrong
        ├── InvalidPlaintextLengthError  plaintext outside the range the scheme can carry
        └── InvalidKeyError              no shared key for these keys (also a KeyFormatError)

``code`` is the PROTOCOL.md §7 error code a failure of that class maps to, or ``None``.
"""

from __future__ import annotations

__all__ = [
    "DecryptError",
    "EventError",
    "InvalidKeyError",
    "InvalidMacError",
    "InvalidPaddingError",
    "InvalidPayloadError",
    "InvalidPlaintextLengthError",
    "KeyFormatError",
    "Nip19Error",
    "NostrError",
    "UnsupportedVersionError",
]


class NostrError(Exception):
    """Root of every error raised by ``arkrelay_core.nostr``."""

    code: int | None = None


class KeyFormatError(NostrError):
    """A secret key is not a scalar in [1, n-1], or a public key is not an x-only point."""


class EventError(NostrError):
    """An event is malformed: bad JSON, wrong shape, or text that cannot be serialised."""

    code = 1001


class Nip19Error(NostrError):
    """A NIP-19 (bech32) string or payload is invalid."""


class DecryptError(NostrError):
    """Encrypted DM content cannot be decrypted (or a message cannot be encrypted)."""

    code = 1007


class UnsupportedVersionError(DecryptError):
    """The payload announces an encryption version other than NIP-44 v2."""


class InvalidPayloadError(DecryptError):
    """The payload is not well-formed: encoding, size or UTF-8 of the plaintext."""


class InvalidMacError(DecryptError):
    """The authentication tag does not match the payload."""


class InvalidPaddingError(DecryptError):
    """The decrypted padding or length prefix is inconsistent."""


class InvalidPlaintextLengthError(DecryptError):
    """The plaintext is empty or longer than the scheme allows."""


class InvalidKeyError(DecryptError, KeyFormatError):
    """A key handed to ECDH is invalid, or a conversation key is not 32 bytes."""
