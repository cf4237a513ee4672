"""What every inbound event passes before anything else sees it: size, shape, id, signature.

Both transports use this one gate so the core never receives an unverified event, and an
invalid one is dropped and counted, never answered with anything the sender could use.
"""

from __future__ import annotations

from typing import Any

import msgspec

from arkrelay_core.nostr import Event, verify_event

__all__ = ["InvalidEvent", "check_event", "check_event_object"]


class InvalidEvent(Exception):
    """Why an event was refused; ``reason`` carries the NIP-01 machine-readable prefix."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def check_event_object(obj: Any, *, max_bytes: int, raw_size: int) -> Event:
    """Check an event already parsed from a frame (``["EVENT", {...}]``).

    ``raw_size`` is the size of the frame it came in, so the size limit holds without
    re-encoding the event.
    """
    if raw_size > max_bytes:
        raise InvalidEvent(f"invalid: event is {raw_size} bytes, the limit is {max_bytes}")
    try:
        event = msgspec.convert(obj, Event)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(f"invalid: malformed event: {exc}") from None
    if not verify_event(event):
        raise InvalidEvent("invalid: bad event id or signature")
    return event


def check_event(raw: bytes | str, *, max_bytes: int) -> Event:
    """Check one event given as JSON text."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise InvalidEvent(f"invalid: event is {size} bytes, the limit is {max_bytes}")
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"invalid: not JSON: {exc}") from None
    return check_event_object(obj, max_bytes=max_bytes, raw_size=size)
