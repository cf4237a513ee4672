"""NIP-01 / NIP-42 frames between the gateway (as a client) and a relay.

Parsing only checks a frame's shape; the event inside an ``EVENT`` frame is left as the
decoded object so the shared gate (``checks.check_event_object``) decides about it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from arkrelay_core.nostr import Event

__all__ = [
    "AuthFrame",
    "ClosedFrame",
    "EoseFrame",
    "EventFrame",
    "FrameError",
    "NoticeFrame",
    "OkFrame",
    "RelayFrame",
    "auth_frame",
    "close_frame",
    "event_frame",
    "parse_frame",
    "req_frame",
    "subscription_filter",
]


class FrameError(ValueError):
    """A relay sent something that is not a relay-to-client message we understand."""


class EventFrame(msgspec.Struct, frozen=True):
    subscription: str
    #: The event as decoded JSON, not yet checked.
    event: Any
    #: UTF-8 size of the whole frame, for the event size limit.
    size: int


class OkFrame(msgspec.Struct, frozen=True):
    event_id: str
    accepted: bool
    message: str


class EoseFrame(msgspec.Struct, frozen=True):
    subscription: str


class ClosedFrame(msgspec.Struct, frozen=True):
    subscription: str
    message: str


class NoticeFrame(msgspec.Struct, frozen=True):
    message: str


class AuthFrame(msgspec.Struct, frozen=True):
    challenge: str


RelayFrame = EventFrame | OkFrame | EoseFrame | ClosedFrame | NoticeFrame | AuthFrame

_encoder = msgspec.json.Encoder()


def _optional_text(rest: Sequence[Any]) -> str:
    # The message of OK and CLOSED is optional in older relays; a non-string is no message.
    return rest[0] if rest and isinstance(rest[0], str) else ""


def parse_frame(raw: str | bytes) -> RelayFrame:
    """Decode one websocket message from a relay; raises :class:`FrameError`."""
    size = len(raw.encode()) if isinstance(raw, str) else len(raw)
    try:
        message = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    match message:
        case ["EVENT", str() as subscription, event]:
            return EventFrame(subscription, event, size)
        case ["OK", str() as event_id, bool() as accepted, *rest]:
            return OkFrame(event_id, accepted, _optional_text(rest))
        case ["EOSE", str() as subscription]:
            return EoseFrame(subscription)
        case ["CLOSED", str() as subscription, *rest]:
            return ClosedFrame(subscription, _optional_text(rest))
        case ["NOTICE", str() as text, *_]:
            return NoticeFrame(text)
        case ["AUTH", str() as challenge]:
            return AuthFrame(challenge)
    label = message[0] if isinstance(message, list) and message else type(message).__name__
    raise FrameError(f"unexpected relay message {str(label)[:40]!r}")


def subscription_filter(kinds: Sequence[int], pubkeys: Sequence[str], since: int) -> dict[str, Any]:
    """The one filter the gateway asks for: its inbound kinds addressed to its keys."""
    return {"kinds": list(kinds), "#p": list(pubkeys), "since": since}


def _text(message: Sequence[Any]) -> str:
    # Relays expect text frames; a bytes message would go out as a binary frame.
    return _encoder.encode(message).decode()


def req_frame(subscription: str, *filters: Mapping[str, Any]) -> str:
    return _text(["REQ", subscription, *filters])


def close_frame(subscription: str) -> str:
    return _text(["CLOSE", subscription])


def event_frame(event: Event) -> str:
    return _text(["EVENT", event])


def auth_frame(event: Event) -> str:
    return _text(["AUTH", event])
