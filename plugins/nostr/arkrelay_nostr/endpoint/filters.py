"""NIP-01 subscription filters: strict validation of what a client sends, and matching.

A filter is refused as a whole (``CLOSED invalid: ...``) rather than half understood: a
client that misspells a field would otherwise receive everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from arkrelay_core.nostr import Event

__all__ = ["MAX_FILTER_VALUES", "Filter", "FilterError", "parse_filter", "parse_filters"]

#: Values one filter may list in all its fields together: keeps every SQL query far below
#: SQLite's bound on parameters and the work per REQ proportionate.
MAX_FILTER_VALUES = 5000
MAX_KIND = 65535
MAX_TIMESTAMP = 2**53 - 1

_HEX32 = re.compile(r"[0-9a-f]{64}")
_TAG_KEY = re.compile(r"#[A-Za-z]")
#: Tag filters whose values NIP-01 defines as event ids / pubkeys.
_HEX_TAGS = frozenset({"e", "p"})


class FilterError(ValueError):
    """A filter the relay refuses; ``reason`` carries the NIP-01 prefix (``invalid:``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Filter(msgspec.Struct, frozen=True):
    """One validated filter. ``None`` means "no condition"; an empty set matches nothing."""

    ids: frozenset[str] | None = None
    authors: frozenset[str] | None = None
    kinds: frozenset[int] | None = None
    #: (tag letter, accepted values), e.g. ``("p", {pubkey})``; all must hold.
    tags: tuple[tuple[str, frozenset[str]], ...] = ()
    since: int | None = None
    until: int | None = None
    #: Stored events the first answer may hold, already capped at the relay's max_limit.
    limit: int = 0

    def can_match(self) -> bool:
        sets: Iterable[frozenset[Any] | None] = (
            self.ids,
            self.authors,
            self.kinds,
            *(values for _, values in self.tags),
        )
        if any(values is not None and not values for values in sets):
            return False
        return self.since is None or self.until is None or self.since <= self.until

    def matches(self, event: Event) -> bool:
        if self.ids is not None and event.id not in self.ids:
            return False
        if self.authors is not None and event.pubkey not in self.authors:
            return False
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.since is not None and event.created_at < self.since:
            return False
        if self.until is not None and event.created_at > self.until:
            return False
        return all(
            any(len(tag) >= 2 and tag[0] == name and tag[1] in values for tag in event.tags)
            for name, values in self.tags
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _hex_list(key: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FilterError(f"invalid: {key} must be a list of strings")
    bad = next((v for v in value if not _HEX32.fullmatch(v)), None)
    if bad is not None:
        raise FilterError(f"invalid: {key} must hold 64 lowercase hex characters, got {bad!r:.80}")
    return frozenset(value)


def _timestamp(key: str, value: Any) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_TIMESTAMP:
        raise FilterError(f"invalid: {key} must be a unix time in seconds (an integer >= 0)")
    return value


def parse_filter(obj: Any, *, max_limit: int) -> Filter:
    """Validate one filter object from a REQ; ``limit`` is capped at ``max_limit``."""
    if not isinstance(obj, dict):
        raise FilterError("invalid: a filter must be a JSON object")
    fields: dict[str, Any] = {"limit": max_limit}
    tags: list[tuple[str, frozenset[str]]] = []
    count = 0
    for key, value in obj.items():
        if key in ("ids", "authors"):
            fields[key] = _hex_list(key, value)
        elif key == "kinds":
            if not isinstance(value, list) or not all(
                _is_int(k) and 0 <= k <= MAX_KIND for k in value
            ):
                raise FilterError(f"invalid: kinds must be a list of integers 0..{MAX_KIND}")
            fields[key] = frozenset(value)
        elif key in ("since", "until"):
            fields[key] = _timestamp(key, value)
        elif key == "limit":
            if not _is_int(value) or value < 0:
                raise FilterError("invalid: limit must be an integer >= 0")
            fields[key] = min(value, max_limit)
        elif _TAG_KEY.fullmatch(key):
            name = key[1]
            if name in _HEX_TAGS:
                values = _hex_list(key, value)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                values = frozenset(value)
            else:
                raise FilterError(f"invalid: {key} must be a list of strings")
            tags.append((name, values))
        else:
            raise FilterError(f"invalid: unsupported filter field {key!r:.40}")
        if isinstance(value, list):
            count += len(value)
    if count > MAX_FILTER_VALUES:
        raise FilterError(f"invalid: a filter may list at most {MAX_FILTER_VALUES} values")
    return Filter(tags=tuple(tags), **fields)


def parse_filters(objs: list[Any], *, max_limit: int) -> tuple[Filter, ...]:
    return tuple(parse_filter(obj, max_limit=max_limit) for obj in objs)
