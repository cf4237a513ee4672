"""NIP-01 events: canonical serialisation, ids, signing and verification."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from typing import Annotated

import msgspec

from arkrelay_core.nostr.bip340 import SigningKey, schnorr_verify, signing_key
from arkrelay_core.nostr.errors import EventError

__all__ = [
    "Event",
    "compute_event_id",
    "decode_event",
    "encode_event",
    "first_tag_value",
    "serialize_for_id",
    "sign_event",
    "tag_values",
    "verify_event",
]

# Above 2**53 a JavaScript client rounds the number, so it would compute a different id.
MAX_TIMESTAMP = 2**53 - 1
MAX_KIND = 65535

# The pattern alone would let "$" match before a trailing newline; the length bound closes that.
Hex32 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$", max_length=64)]
Hex64 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{128}$", max_length=128)]
Kind = Annotated[int, msgspec.Meta(ge=0, le=MAX_KIND)]
Timestamp = Annotated[int, msgspec.Meta(ge=0, le=MAX_TIMESTAMP)]

_HEX32 = re.compile(r"[0-9a-f]{64}")
_HEX64 = re.compile(r"[0-9a-f]{128}")


class Event(msgspec.Struct, frozen=True):
    """A signed Nostr event; every hex field is lowercase."""

    id: Hex32
    pubkey: Hex32
    created_at: Timestamp
    kind: Kind
    tags: list[list[str]]
    content: str
    sig: Hex64


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)


def _is_int(value: object, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= high


def _valid_tags(tags: object) -> bool:
    if not isinstance(tags, list | tuple):
        return False
    for tag in tags:
        if not isinstance(tag, list | tuple):
            return False
        if not all(isinstance(item, str) for item in tag):
            return False
    return True


def serialize_for_id(
    pubkey: str,
    created_at: int,
    kind: int,
    tags: Sequence[Sequence[str]],
    content: str,
) -> bytes:
    """Return the NIP-01 canonical form ``[0,pubkey,created_at,kind,tags,content]`` as UTF-8.

    msgspec escapes exactly what ``JSON.stringify`` escapes (``"``, ``\\``, the short
    escapes, other C0 controls as lowercase ``\\u00xx``) and writes everything else
    verbatim, which is what makes our ids equal those of JavaScript clients.
    """
    if not isinstance(pubkey, str) or not _HEX32.fullmatch(pubkey):
        raise EventError("pubkey must be 64 lowercase hex characters")
    if not _is_int(created_at, MAX_TIMESTAMP):
        raise EventError(f"created_at must be an integer in [0, {MAX_TIMESTAMP}]")
    if not _is_int(kind, MAX_KIND):
        raise EventError(f"kind must be an integer in [0, {MAX_KIND}]")
    if not isinstance(content, str):
        raise EventError("content must be a string")
    if not _valid_tags(tags):
        raise EventError("tags must be a list of lists of strings")
    try:
        return _encoder.encode([0, pubkey, created_at, kind, tags, content])
    except UnicodeEncodeError as exc:
        # A lone surrogate has no UTF-8 form, so no id that other clients could agree on.
        raise EventError("event text is not valid Unicode (lone surrogate)") from exc


def _id_digest(
    pubkey: str,
    created_at: int,
    kind: int,
    tags: Sequence[Sequence[str]],
    content: str,
) -> bytes:
    return hashlib.sha256(serialize_for_id(pubkey, created_at, kind, tags, content)).digest()


def compute_event_id(
    pubkey: str,
    created_at: int,
    kind: int,
    tags: Sequence[Sequence[str]],
    content: str,
) -> str:
    """Return the event id: lowercase hex sha256 of :func:`serialize_for_id`."""
    return _id_digest(pubkey, created_at, kind, tags, content).hex()


def sign_event(
    secret_key: bytes | SigningKey,
    *,
    kind: int,
    content: str,
    tags: Sequence[Sequence[str]] = (),
    created_at: int | None = None,
) -> Event:
    """Build and sign an event with ``secret_key``; ``created_at`` defaults to now.

    Long-lived signers pass a :class:`SigningKey`; raw bytes are prepared through a cache.
    """
    key = signing_key(secret_key)
    if created_at is None:
        created_at = int(time.time())
    tag_list = [list(tag) for tag in tags]
    digest = _id_digest(key.public_key_hex, created_at, kind, tag_list, content)
    return Event(
        id=digest.hex(),
        pubkey=key.public_key_hex,
        created_at=created_at,
        kind=kind,
        tags=tag_list,
        content=content,
        sig=key.sign(digest).hex(),
    )


def verify_event(event: Event) -> bool:
    """Return whether ``event``'s id matches its content and its signature is valid.

    Never raises: malformed fields of any kind make the event invalid.
    """
    if not isinstance(event, Event):
        return False
    if not (
        isinstance(event.id, str)
        and _HEX32.fullmatch(event.id)
        and isinstance(event.sig, str)
        and _HEX64.fullmatch(event.sig)
    ):
        return False
    try:
        digest = _id_digest(event.pubkey, event.created_at, event.kind, event.tags, event.content)
    except EventError:
        return False
    if digest.hex() != event.id:
        return False
    return schnorr_verify(bytes.fromhex(event.pubkey), digest, bytes.fromhex(event.sig))


def decode_event(raw: bytes | str) -> Event:
    """Parse one event from JSON and check its shape (it is not verified here).

    Raises :class:`EventError` for malformed JSON, invalid UTF-8, missing or mistyped
    fields, uppercase or wrong-length hex, or a kind / timestamp out of range.
    """
    try:
        return _event_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise EventError(f"malformed event: {exc}") from exc


def encode_event(event: Event) -> bytes:
    """Serialise ``event`` as compact JSON (the form sent to relays)."""
    return _encoder.encode(event)


def first_tag_value(event: Event, name: str) -> str | None:
    """Return the value of the first ``[name, value, ...]`` tag, or ``None``."""
    for tag in event.tags:
        if len(tag) >= 2 and tag[0] == name:
            return tag[1]
    return None


def tag_values(event: Event, name: str) -> list[str]:
    """Return the values of every ``[name, value, ...]`` tag, in order."""
    return [tag[1] for tag in event.tags if len(tag) >= 2 and tag[0] == name]
