"""The NIP-01 wire messages: parsing what clients send, encoding what the relay answers.

Every way a frame can be malformed ends in :class:`FrameError`, which carries the
answer to send: ``OK false`` when the frame names an event, ``CLOSED`` when it names a
subscription, ``NOTICE`` otherwise. Nothing a client sends can make the parser raise
anything else.
"""

from __future__ import annotations

import re
from typing import Any, Literal, NoReturn

import msgspec

__all__ = [
    "MAX_SUB_ID_CHARS",
    "Auth",
    "Close",
    "Command",
    "EventMessage",
    "FrameError",
    "Req",
    "auth_challenge",
    "closed",
    "eose",
    "event_message",
    "notice",
    "ok",
    "parse_frame",
]

#: NIP-01: subscription ids are non-empty strings of at most 64 characters.
MAX_SUB_ID_CHARS = 64

_HEX32 = re.compile(r"[0-9a-f]{64}")
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def _text(value: Any) -> str:
    return _encoder.encode(value).decode()


def _clean(message: str) -> str:
    # Reasons may quote what a client sent; a lone surrogate in it has no UTF-8 form.
    return message.encode("utf-8", "replace").decode("utf-8")


def notice(message: str) -> str:
    return _text(["NOTICE", _clean(message)])


def ok(event_id: str, accepted: bool, message: str = "") -> str:
    return _text(["OK", event_id, accepted, _clean(message)])


def closed(sub_id: str, reason: str) -> str:
    return _text(["CLOSED", sub_id, _clean(reason)])


def eose(sub_id: str) -> str:
    return _text(["EOSE", sub_id])


def auth_challenge(challenge: str) -> str:
    return _text(["AUTH", challenge])


def event_message(sub_id: str, raw_event: str) -> str:
    """``["EVENT", sub_id, event]`` around an event already encoded as JSON."""
    return f'["EVENT",{_text(sub_id)},{raw_event}]'


Refused = Literal["event", "subscription", "message"]


class FrameError(Exception):
    """A frame the relay cannot act on.

    ``reply`` is the encoded answer to send, ``reason`` its text (with its NIP-01 prefix)
    and ``about`` what was refused: ``"event"`` (OK false), ``"subscription"`` (CLOSED) or
    ``"message"`` (NOTICE).
    """

    def __init__(self, about: Refused, reply: str, reason: str) -> None:
        self.about = about
        self.reply = reply
        self.reason = reason
        super().__init__(reason)


def _bad_message(reason: str) -> FrameError:
    return FrameError("message", notice(reason), reason)


def _bad_event(event_id: str, reason: str) -> FrameError:
    return FrameError("event", ok(event_id, False, reason), reason)


def _bad_subscription(sub_id: str, reason: str) -> FrameError:
    return FrameError("subscription", closed(sub_id, reason), reason)


class EventMessage(msgspec.Struct, frozen=True):
    event: dict[str, Any]
    event_id: str
    size: int


class Auth(msgspec.Struct, frozen=True):
    event: dict[str, Any]
    event_id: str
    size: int


class Req(msgspec.Struct, frozen=True):
    sub_id: str
    filters: list[Any]


class Close(msgspec.Struct, frozen=True):
    sub_id: str


Command = EventMessage | Auth | Req | Close


def _event_id(obj: Any) -> str | None:
    if isinstance(obj, dict):
        value = obj.get("id")
        if isinstance(value, str) and _HEX32.fullmatch(value):
            return value
    return None


def _sub_id(value: Any) -> str | None:
    """The subscription id if it is one that can be echoed back (NIP-01: 1 to 64 chars)."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SUB_ID_CHARS:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _size(frame: str | bytes) -> int:
    return len(frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame)


def parse_frame(frame: str | bytes, *, max_bytes: int) -> Command:
    """Parse one websocket message; raise :class:`FrameError` with the answer if malformed."""
    try:
        msg = _decoder.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise _bad_message("invalid: message is not JSON") from None
    except RecursionError:
        # msgspec decodes recursively; "[[[[..." a few thousand deep exhausts the stack.
        raise _bad_message("invalid: message is nested too deeply") from None
    if not isinstance(msg, list) or not msg or not isinstance(msg[0], str):
        raise _bad_message("invalid: a message is a JSON array that starts with a verb")
    verb, args = msg[0], msg[1:]
    size = _size(frame)
    if size > max_bytes:
        _refuse(verb, args, f"invalid: message is {size} bytes, the limit is {max_bytes}")
    if verb in ("EVENT", "AUTH"):
        event_id = _event_id(args[0]) if args else None
        if event_id is None:
            raise _bad_message(f"invalid: {verb} needs an event object with a hex id")
        if len(args) != 1:
            raise _bad_event(event_id, f"invalid: {verb} takes exactly one event")
        cls = EventMessage if verb == "EVENT" else Auth
        return cls(event=args[0], event_id=event_id, size=size)
    if verb in ("REQ", "CLOSE", "COUNT"):
        sub_id = _sub_id(args[0]) if args else None
        if sub_id is None:
            raise _bad_message(
                f"invalid: {verb} needs a subscription id of 1 to {MAX_SUB_ID_CHARS} chars"
            )
        if verb == "CLOSE":
            if len(args) != 1:
                raise _bad_message("invalid: CLOSE takes exactly one subscription id")
            return Close(sub_id)
        if verb == "COUNT":
            raise _bad_subscription(sub_id, "invalid: this relay does not support COUNT")
        if len(args) < 2:
            raise _bad_subscription(sub_id, "invalid: REQ needs at least one filter")
        return Req(sub_id=sub_id, filters=args[1:])
    raise _bad_message(f"invalid: unknown message type {verb!r:.40}")


def _refuse(verb: str, args: list[Any], reason: str) -> NoReturn:
    """Raise the answer that names what the refused frame was about, when it names one."""
    if verb in ("EVENT", "AUTH") and args and (event_id := _event_id(args[0])) is not None:
        raise _bad_event(event_id, reason)
    if verb in ("REQ", "COUNT") and args and (sub_id := _sub_id(args[0])) is not None:
        raise _bad_subscription(sub_id, reason)
    raise _bad_message(reason)
