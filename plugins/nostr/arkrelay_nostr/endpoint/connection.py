"""One client's websocket session: its frames, subscriptions and AUTH state.

The session handles frames one at a time, so a client's answers come in the order of
its requests; they go out through a bounded :class:`Outbox`. Live events are queued
there without waiting, and a client that lets it fill up is cut off, so one slow reader
never holds up the others nor grows memory.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from arkrelay_core.nostr import Event

from ..checks import InvalidEvent, check_event_object
from . import frames
from .auth import AUTH_KIND, AuthError, check_auth_event, may_read, new_challenge
from .filters import Filter, FilterError, parse_filters
from .limits import TokenBucket
from .outbox import OUTBOX_SIZE, AsgiSend, Outbox
from .relay import Relay, prefix
from .store import StoreError

__all__ = ["IDLE_TIMEOUT_S", "Connection", "Subscription"]

log = logging.getLogger(__name__)

#: A connection without subscriptions that sends nothing for this long is closed.
IDLE_TIMEOUT_S = 300.0
#: Close frames (RFC 6455 codes).
CLOSE_SLOW_READER = (1008, "too many unread messages")
CLOSE_IDLE = (1000, "idle")

AsgiReceive = Callable[[], Awaitable[dict[str, Any]]]


class Subscription:
    """An open REQ. Until its stored events and EOSE are out, live matches wait in
    ``backlog`` so they follow the EOSE instead of racing ahead of it."""

    __slots__ = ("backlog", "filters", "live", "sub_id")

    def __init__(self, sub_id: str, filters: tuple[Filter, ...]) -> None:
        self.sub_id = sub_id
        self.filters = filters
        self.live = False
        self.backlog: deque[tuple[Event, str]] = deque()

    def matches(self, event: Event) -> bool:
        return any(f.matches(event) for f in self.filters)


class Connection:
    """One accepted websocket; ``send``/``receive`` are its ASGI callables."""

    def __init__(self, relay: Relay, send: AsgiSend, receive: AsgiReceive) -> None:
        self.relay = relay
        self.settings = relay.settings
        self.conn_id = relay.next_connection_id()
        self.subscriptions: dict[str, Subscription] = {}
        self.authenticated: set[str] = set()
        self.challenge = new_challenge()
        self._receive_asgi = receive
        self._outbox = Outbox(send)
        self._rate = TokenBucket(self.settings.events_per_second_per_connection)
        self._cut_off = False
        self._reading = trio.CancelScope()

    @property
    def readers(self) -> frozenset[str] | None:
        """Who this connection reads as, for the private kinds (``None``: no AUTH rule)."""
        return frozenset(self.authenticated) if self.settings.require_auth else None

    async def run(self) -> None:
        """Serve the accepted websocket until the client leaves, idles or is cut off."""
        self.relay.connections.add(self)
        self.relay.nursery.start_soon(self._outbox.run)
        try:
            with self._reading:
                if self.settings.require_auth:
                    await self._reply(frames.auth_challenge(self.challenge))
                if await self._read():
                    self._outbox.finish(CLOSE_IDLE)
                else:
                    self._outbox.abandon()
            await self._outbox.done.wait()
        finally:
            self._drop()
            self.relay.closing.discard(self)

    def _drop(self) -> None:
        self.relay.connections.discard(self)
        self.subscriptions.clear()
        self._outbox.abandon()

    async def _reply(self, text: str) -> None:
        await self._outbox.put(text)

    def _push(self, text: str) -> None:
        if not self._outbox.put_nowait(text):
            self._cut_off_slow_reader()

    def _cut_off_slow_reader(self) -> None:
        if self._cut_off:
            return
        log.info("endpoint:%d does not read its messages; disconnecting it", self.conn_id)
        self._cut_off = True
        self.relay.counters.slow_disconnects += 1
        self.relay.connections.discard(self)
        self.relay.closing.add(self)
        self.subscriptions.clear()
        self._outbox.abandon(CLOSE_SLOW_READER)
        self._reading.cancel()

    def deliver(self, event: Event, raw: str) -> None:
        """Pass a new event to each matching subscription; never waits."""
        if self._cut_off or not may_read(event, self.readers):
            return
        for sub in list(self.subscriptions.values()):
            if not sub.matches(event):
                continue
            if sub.live:
                self._push(frames.event_message(sub.sub_id, raw))
            elif len(sub.backlog) < OUTBOX_SIZE:
                sub.backlog.append((event, raw))
            else:
                self._cut_off_slow_reader()
                return

    # ---------------------------------------------------------------- incoming

    async def _read(self) -> bool:
        """Handle frames until the client leaves (False) or stays silent too long (True)."""
        while True:
            timeout = math.inf if self.subscriptions else IDLE_TIMEOUT_S
            with trio.move_on_after(timeout) as idle:
                message = await self._receive_asgi()
            if idle.cancelled_caught:
                return True
            if message["type"] == "websocket.disconnect":
                return False
            if message["type"] == "websocket.receive":
                text = message.get("text")
                await self._handle(text if text is not None else message.get("bytes") or b"")

    async def _handle(self, frame: str | bytes) -> None:
        try:
            command = frames.parse_frame(frame, max_bytes=self.settings.max_message_bytes)
        except frames.FrameError as refused:
            self._count_refusal(refused.about, refused.reason)
            await self._reply(refused.reply)
            return
        if isinstance(command, frames.EventMessage):
            accepted, reason = await self._on_event(command)
            if not accepted:
                self._count_refusal("event", reason)
            else:
                self.relay.counters.accepted += 1
            await self._reply(frames.ok(command.event_id, accepted, reason))
        elif isinstance(command, frames.Auth):
            accepted, reason = await self._on_auth(command)
            await self._reply(frames.ok(command.event_id, accepted, reason))
        elif isinstance(command, frames.Req):
            await self._on_req(command)
        else:
            self.subscriptions.pop(command.sub_id, None)

    def _count_refusal(self, about: str, reason: str) -> None:
        counters = self.relay.counters
        if about == "event":
            counters.rejected[prefix(reason)] += 1
        elif about == "subscription":
            counters.refused_subscriptions[prefix(reason)] += 1
        else:
            counters.notices += 1

    def _verify(self, command: frames.EventMessage | frames.Auth) -> Event:
        return check_event_object(
            command.event, max_bytes=self.settings.max_message_bytes, raw_size=command.size
        )

    async def _on_event(self, command: frames.EventMessage) -> tuple[bool, str]:
        if self.settings.require_auth and not self.authenticated:
            return False, "auth-required: authenticate with NIP-42 AUTH first"
        # Before the signature check, so a flood costs the gateway no verification.
        if not self._rate.try_take():
            return False, "rate-limited: too many events on this connection, slow down"
        try:
            event = self._verify(command)
        except InvalidEvent as exc:
            return False, exc.reason
        if event.kind == AUTH_KIND:
            return False, "invalid: kind 22242 is sent with AUTH, not EVENT"
        return await self.relay.submit(event, source=f"endpoint:{self.conn_id}")

    async def _on_auth(self, command: frames.Auth) -> tuple[bool, str]:
        if not self._rate.try_take():
            return False, "rate-limited: too many messages on this connection, slow down"
        try:
            event = self._verify(command)
            check_auth_event(
                event,
                challenge=self.challenge,
                relay_urls=self.relay.relay_urls,
                now=time.time(),
            )
        except (InvalidEvent, AuthError) as exc:
            return False, exc.reason
        self.authenticated.add(event.pubkey)
        return True, ""

    async def _refuse_req(self, sub_id: str, reason: str) -> None:
        self._count_refusal("subscription", reason)
        await self._reply(frames.closed(sub_id, reason))

    async def _on_req(self, command: frames.Req) -> None:
        sub_id = command.sub_id
        # NIP-01: a REQ with the id of an open subscription replaces it.
        self.subscriptions.pop(sub_id, None)
        if self.settings.require_auth and not self.authenticated:
            return await self._refuse_req(sub_id, "auth-required: authenticate first")
        if len(command.filters) > self.settings.max_filters:
            reason = f"invalid: at most {self.settings.max_filters} filters per REQ"
            return await self._refuse_req(sub_id, reason)
        if len(self.subscriptions) >= self.settings.max_subscriptions:
            limit = self.settings.max_subscriptions
            reason = f"blocked: at most {limit} open subscriptions; CLOSE one first"
            return await self._refuse_req(sub_id, reason)
        try:
            filters = parse_filters(command.filters, max_limit=self.settings.max_limit)
        except FilterError as exc:
            return await self._refuse_req(sub_id, exc.reason)
        sub = self.subscriptions[sub_id] = Subscription(sub_id, filters)
        try:
            stored = await self.relay.store.query(filters, readers=self.readers)
        except StoreError:
            log.exception("endpoint could not query stored events")
            self.subscriptions.pop(sub_id, None)
            return await self._refuse_req(sub_id, "error: could not read stored events")
        for _, raw in stored:
            await self._reply(frames.event_message(sub_id, raw))
        await self._reply(frames.eose(sub_id))
        sent = {event_id for event_id, _ in stored}
        while sub.backlog:
            event, raw = sub.backlog.popleft()
            if event.id not in sent:
                await self._reply(frames.event_message(sub_id, raw))
        # No checkpoint since the backlog was seen empty: nothing can slip in between.
        sub.live = True
