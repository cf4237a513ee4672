"""The inputs of ``arkrelay settlement verify``: the proof from a file or the gateway's API,
the 31342 from a file or a relay. Bytes and events come out unchecked; the checks are
:mod:`arkrelay_core.settlement.proofcheck`'s. Anything that cannot be read or fetched is
:class:`InputUnavailable` (exit status 3).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import msgspec
import trio

from ..nostr import Event, first_tag_value, verify_event
from ..protocol import Kind

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_EVENTS",
    "InputUnavailable",
    "deadline",
    "fetch_commitment",
    "fetch_url",
    "read_document",
    "read_file",
]

#: A proof is a few hundred bytes per level; anything this large is not one.
MAX_DOCUMENT_BYTES = 1 << 20
#: Events the relay may send for our one filter before we stop listening.
MAX_EVENTS = 20


class InputUnavailable(click.ClickException):
    """The proof or the event could not be read or fetched (exit status 3)."""

    exit_code = 3


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Fail with :class:`InputUnavailable` if the block takes longer than ``seconds``."""
    try:
        with trio.fail_after(seconds):
            yield
    except trio.TooSlowError:
        raise InputUnavailable(f"{what} did not answer within {seconds:g}s") from None


# --------------------------------------------------------------------------- files and URLs


def read_file(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise InputUnavailable(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputUnavailable(f"the {what} {path} is larger than {MAX_DOCUMENT_BYTES} bytes")
    return raw


def _http_get(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise InputUnavailable(f"{url} answered {exc.code}: {_error_detail(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputUnavailable(f"cannot fetch {url}: {reason}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputUnavailable(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
    return raw


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The API's ErrorBody ``detail`` when the answer is one, else the status reason."""
    try:
        body = json.loads(exc.read(MAX_DOCUMENT_BYTES))
    except (ValueError, OSError):
        return str(exc.reason)
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else str(exc.reason)


async def fetch_url(url: str, *, socket_timeout: float) -> bytes:
    """GET ``url``. urllib's ``socket_timeout`` bounds each read, not the whole answer:
    the caller's deadline does that, and the worker thread is abandoned if it passes."""
    return await trio.to_thread.run_sync(_http_get, url, socket_timeout, abandon_on_cancel=True)


async def read_document(source: str, what: str, *, socket_timeout: float) -> bytes:
    """``source`` fetched if it is an http(s) URL, else read as a file path."""
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return await fetch_url(source, socket_timeout=socket_timeout)
    return read_file(Path(source), what)


# --------------------------------------------------------------------------- the relay


async def fetch_commitment(relay: str, author: str, settlement_id: str) -> Event:
    """The newest 31342 by ``author`` with ``d`` = ``l1:<settlement_id>`` on ``relay``
    (the caller sets the deadline)."""
    try:
        import trio_websocket
    except ImportError:
        raise InputUnavailable(
            "--relay needs the trio-websocket package (it comes with arkrelay-nostr); "
            "or fetch the event yourself and pass it with --event"
        ) from None
    subscription = f"verify-{secrets.token_hex(4)}"
    wanted = {
        "kinds": [int(Kind.L1_COMMITMENT)],
        "authors": [author],
        "#d": [f"l1:{settlement_id}"],
        "limit": MAX_EVENTS,
    }
    found: list[Event] = []
    try:
        async with trio_websocket.open_websocket_url(
            relay, max_message_size=MAX_DOCUMENT_BYTES, message_queue_size=4
        ) as ws:
            await ws.send_message(json.dumps(["REQ", subscription, wanted]))
            while True:
                frame = _relay_frame(await ws.get_message(), relay)
                verb = frame[0]
                if verb == "EVENT" and frame[1:2] == [subscription] and len(frame) >= 3:
                    event = _relay_event(frame[2])
                    if event is not None and len(found) < MAX_EVENTS:
                        found.append(event)
                elif verb == "EOSE" and frame[1:2] == [subscription]:
                    break
                elif verb == "CLOSED" and frame[1:2] == [subscription]:
                    reason = frame[2] if len(frame) > 2 else ""
                    raise InputUnavailable(f"{relay} refused the query: {reason}")
            await ws.send_message(json.dumps(["CLOSE", subscription]))
    except (trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, OSError) as exc:
        # trio-websocket's HandshakeError says nothing itself; what it wraps does.
        cause = exc.__cause__ or exc
        raise InputUnavailable(f"cannot query {relay}: {type(cause).__name__}: {cause}") from None
    # The filter asked for exactly these, but a relay's answer is no more trusted than an
    # event: a relay that ignores a filter field must not make another event the answer.
    matching = [
        e
        for e in found
        if e.pubkey == author
        and e.kind == Kind.L1_COMMITMENT
        and first_tag_value(e, "d") == f"l1:{settlement_id}"
    ]
    if not matching:
        raise InputUnavailable(
            f"{relay} has no 31342 by {author} with d = l1:{settlement_id} "
            "(not announced yet, or not on this relay)"
        )
    # A forged copy cannot displace the genuine one; with none genuine, the newest is
    # returned and fails its checks by name.
    return max(matching, key=lambda e: (verify_event(e), e.created_at, e.id))


def _relay_frame(raw: str | bytes, relay: str) -> list[Any]:
    try:
        frame = json.loads(raw)
    except ValueError:
        raise InputUnavailable(f"{relay} sent a frame that is not JSON") from None
    if not isinstance(frame, list) or not frame or not isinstance(frame[0], str):
        raise InputUnavailable(f"{relay} sent a frame that is not a Nostr message")
    return frame


def _relay_event(value: Any) -> Event | None:
    try:
        return msgspec.convert(value, Event)
    except msgspec.ValidationError:
        return None  # a malformed event is no announcement; the next may be
