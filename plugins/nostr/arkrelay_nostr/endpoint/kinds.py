"""NIP-01 kind ranges: which events a relay keeps, replaces, or only passes on."""

from __future__ import annotations

from arkrelay_core.nostr import Event, first_tag_value

__all__ = ["is_addressable", "is_ephemeral", "is_replaceable", "replacement_slot"]


def is_ephemeral(kind: int) -> bool:
    return 20000 <= kind < 30000


def is_replaceable(kind: int) -> bool:
    return kind in (0, 3) or 10000 <= kind < 20000


def is_addressable(kind: int) -> bool:
    return 30000 <= kind < 40000


def replacement_slot(event: Event) -> str | None:
    """The key under which only the newest event is kept, or ``None`` for regular kinds.

    Replaceable: (pubkey, kind); addressable: (pubkey, kind, first ``d`` value, ``""`` when
    there is no ``d`` tag).
    """
    if is_replaceable(event.kind):
        return f"{event.pubkey}:{event.kind}"
    if is_addressable(event.kind):
        return f"{event.pubkey}:{event.kind}:{first_tag_value(event, 'd') or ''}"
    return None
