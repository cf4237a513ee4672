"""Encrypted direct-message content in NIP-44 v2 or NIP-04, with a bounded key cache.

The gateway talks to the same wallets again and again, and the ECDH behind every
message is the expensive step, so the shared secret of each (our key, peer) pair is kept
in a small LRU cache. Both schemes derive their keys from that one secret.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import NamedTuple

import msgspec

from arkrelay_core.nostr import nip04, nip44
from arkrelay_core.nostr._ecdh import parse_public_key, shared_x
from arkrelay_core.nostr.errors import InvalidKeyError, InvalidPayloadError

__all__ = [
    "KEY_CACHE_SIZE",
    "KeyCacheStatistics",
    "Scheme",
    "clear_key_cache",
    "decrypt_dm",
    "detect_scheme",
    "encrypt_dm",
    "key_cache_statistics",
]

KEY_CACHE_SIZE = 1024


class Scheme(StrEnum):
    """How the content of an encrypted event is encrypted."""

    NIP44 = "nip44"
    NIP04 = "nip04"


class KeyCacheStatistics(msgspec.Struct, frozen=True):
    """Counters of the shared-key cache."""

    hits: int
    misses: int
    size: int
    max_size: int


class _PeerKeys(NamedTuple):
    nip04_key: bytes
    nip44_conversation_key: bytes


@functools.lru_cache(maxsize=KEY_CACHE_SIZE)
def _peer_keys(secret: bytes, peer: bytes) -> _PeerKeys:
    shared = shared_x(secret, peer)
    return _PeerKeys(shared, nip44.conversation_key_from_shared_x(shared))


def _keys_for(secret: bytes, peer_pubkey: str | bytes) -> _PeerKeys:
    if not isinstance(secret, bytes | bytearray):
        raise InvalidKeyError("secret key must be bytes")
    # Normalise first so hex in either case and raw bytes share one cache entry.
    return _peer_keys(bytes(secret), parse_public_key(peer_pubkey))


def detect_scheme(content: str) -> Scheme:
    """Return the scheme of ``content``: NIP-04 carries ``?iv=``, base64 NIP-44 never does."""
    return Scheme.NIP04 if nip04.IV_SEPARATOR in content else Scheme.NIP44


def decrypt_dm(secret: bytes, peer_pubkey: str | bytes, content: str) -> tuple[str, Scheme]:
    """Decrypt ``content`` exchanged with ``peer_pubkey``; also return the scheme it used.

    Raises a :class:`~arkrelay_core.nostr.errors.DecryptError` subclass on any failure.
    """
    if not isinstance(content, str):
        raise InvalidPayloadError("encrypted content must be text")
    scheme = detect_scheme(content)
    keys = _keys_for(secret, peer_pubkey)
    if scheme is Scheme.NIP04:
        return nip04.decrypt_with_key(keys.nip04_key, content), scheme
    return nip44.decrypt(content, keys.nip44_conversation_key), scheme


def encrypt_dm(
    secret: bytes, peer_pubkey: str | bytes, plaintext: str, scheme: Scheme | str
) -> str:
    """Encrypt ``plaintext`` for ``peer_pubkey`` in ``scheme``."""
    scheme = Scheme(scheme)
    keys = _keys_for(secret, peer_pubkey)
    if scheme is Scheme.NIP04:
        return nip04.encrypt_with_key(keys.nip04_key, plaintext)
    return nip44.encrypt(plaintext, keys.nip44_conversation_key)


def key_cache_statistics() -> KeyCacheStatistics:
    """Return hit/miss counters and the current and maximum size of the key cache."""
    info = _peer_keys.cache_info()
    return KeyCacheStatistics(
        hits=info.hits, misses=info.misses, size=info.currsize, max_size=info.maxsize or 0
    )


def clear_key_cache() -> None:
    """Forget every cached shared key (after rotating the service key, for instance)."""
    _peer_keys.cache_clear()
