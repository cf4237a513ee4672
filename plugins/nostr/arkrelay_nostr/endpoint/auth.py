"""NIP-42 authentication, and who may read the private kinds once it is required."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from arkrelay_core.nostr import Event, first_tag_value, tag_values
from arkrelay_core.protocol import ENCRYPTED_KINDS

__all__ = [
    "AUTH_KIND",
    "AUTH_WINDOW_S",
    "PRIVATE_KINDS",
    "AuthError",
    "check_auth_event",
    "may_read",
    "new_challenge",
    "normalize_url",
]

AUTH_KIND = 22242
#: How far an AUTH event's created_at may be from now (NIP-42 suggests about 10 minutes).
AUTH_WINDOW_S = 600
#: Kinds whose events, under required AUTH, only their author and addressees may read.
PRIVATE_KINDS = frozenset(int(kind) for kind in ENCRYPTED_KINDS)


class AuthError(ValueError):
    """A refused AUTH event; ``reason`` carries the NIP-01 prefix."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def new_challenge() -> str:
    return secrets.token_urlsafe(24)


def normalize_url(url: str) -> str | None:
    """Compare relay URLs the way clients write them: case-insensitive host, no final slash.

    ``None`` for what is not a URL at all.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an unclosed "[" in an IPv6 host
        return None
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def check_auth_event(
    event: Event, *, challenge: str, relay_urls: Iterable[str], now: float
) -> None:
    """Raise :class:`AuthError` unless ``event`` (already verified) answers ``challenge``."""
    if event.kind != AUTH_KIND:
        raise AuthError(f"invalid: AUTH needs a kind {AUTH_KIND} event")
    if abs(now - event.created_at) > AUTH_WINDOW_S:
        raise AuthError("invalid: AUTH event created_at is more than 10 minutes from now")
    if first_tag_value(event, "challenge") != challenge:
        raise AuthError("invalid: AUTH event does not carry this connection's challenge")
    relay = first_tag_value(event, "relay")
    ours = {normalize_url(url) for url in relay_urls} - {None}
    if relay is None or normalize_url(relay) not in ours:
        raise AuthError("invalid: AUTH event names another relay")


def may_read(event: Event, readers: frozenset[str] | None) -> bool:
    """Whether a connection authenticated as ``readers`` may receive ``event``.

    ``None`` means AUTH is not required, and everything is served (private kinds carry
    ciphertext anyway). Otherwise a private kind goes only to its author and to the
    pubkeys in its ``p`` tags.
    """
    if readers is None or event.kind not in PRIVATE_KINDS:
        return True
    if event.pubkey in readers:
        return True
    return any(pubkey in readers for pubkey in tag_values(event, "p"))
