"""One relay: connect, answer NIP-42, subscribe, read; reconnect with backoff when it breaks."""

from __future__ import annotations

import logging
import time

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from arkrelay_core.interfaces import InboundEvent, PluginContext, Receipt
from arkrelay_core.nostr import tag_values

from ..checks import InvalidEvent, check_event_object
from ..settings import RelaysSettings
from .acks import Ack
from .auth import RelayAuth
from .backoff import Backoff
from .frames import (
    AuthFrame,
    ClosedFrame,
    EoseFrame,
    EventFrame,
    FrameError,
    NoticeFrame,
    OkFrame,
    parse_frame,
)
from .publisher import Publisher
from .resume import ResumePoint
from .stats import RelayStats
from .subscription import Subscription
from .websocket import CONNECTION_ERRORS, open_relay_socket

__all__ = ["RelayConnection"]

log = logging.getLogger(__name__)


class RelayConnection:
    """Keeps one relay connected and subscribed; hands verified events to ``deliver``."""

    def __init__(
        self,
        url: str,
        settings: RelaysSettings,
        context: PluginContext,
        deliver: trio.MemorySendChannel[InboundEvent],
        *,
        keepalive: float,
    ) -> None:
        self.url = url
        self.stats = RelayStats()
        self._settings = settings
        self._context = context
        self._deliver = deliver
        self._keepalive = keepalive
        # One network deadline for opening, closing, each send and each keepalive ping.
        self._send_timeout = settings.connect_timeout.seconds
        initial, maximum = settings.backoff_initial.seconds, settings.backoff_max.seconds
        self._backoff = Backoff(initial, maximum)
        now = time.time()
        self._sub = Subscription(
            settings.kinds,
            window=settings.resubscribe_window.seconds,
            backoff=Backoff(initial, maximum),
            now=now,
        )
        #: What a restarted process resumes from (kept on disk by the pool).
        self.resume = ResumePoint(int(now))
        self._auth = RelayAuth(url, context.sign_event, enabled=settings.auth)
        self._publisher = Publisher(
            url, self.stats, self._auth, send=self._send, authenticate=self._authenticate
        )
        self._ws: WebSocketConnection | None = None
        self._wakeup = trio.Event()
        self._delivering = False

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def publish(self, event_id: str, frame: str) -> Ack | None:
        """Send an EVENT frame, wait for its OK (None: no answer); the caller's deadline."""
        return await self._publisher.publish(event_id, frame)

    def restore(self, recorded: int) -> None:
        """Before the first :meth:`run`: resume from the point an earlier process kept, so
        nothing it took but the core did not record is skipped."""
        self.resume = ResumePoint(recorded)
        self._sub.cursor = min(self._sub.cursor, recorded)

    async def run(self) -> None:
        """Stay connected until cancelled; every connection failure leads to a backoff."""
        while True:
            self.stats.state = "connecting"
            try:
                await self._session()
            except* CONNECTION_ERRORS as group:
                self._note_error(group)
            finally:
                self._session_ended()
            delay = self._backoff.next_delay()
            self.stats.state = "backoff"
            log.info("relay %s: reconnecting in %.2fs (%s)", self.url, delay, self.stats.last_error)
            await trio.sleep(delay)

    async def _session(self) -> None:
        async with open_relay_socket(
            self.url,
            connect_timeout=self._send_timeout,
            disconnect_timeout=self._send_timeout,
            # Room for the largest event we accept plus the frame around it.
            max_message_size=2 * self._settings.max_event_bytes,
        ) as ws:
            await self._connected(ws)

    async def _connected(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self.stats.state = "connected"
        self.stats.connects += 1
        self.stats.connected_since = time.time()
        log.info("relay %s: connected", self.url)
        await self._subscribe()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._maintain, ws)
            while True:
                # No deadline: a quiet relay is normal; _maintain's pings carry one.
                await self.handle_frame(await ws.get_message())

    def _note_error(self, group: BaseExceptionGroup[BaseException]) -> None:
        error: BaseException = group
        while isinstance(error, BaseExceptionGroup):
            error = error.exceptions[0]
        # trio-websocket's HandshakeError says nothing itself; the OSError behind it does.
        detail = str(error) or str(error.__cause__ or "")
        self.stats.last_error = f"{type(error).__name__}: {detail}".removesuffix(": ")
        log.warning("relay %s: connection lost: %s", self.url, self.stats.last_error)

    def _session_ended(self) -> None:
        self._ws = None
        self._sub.connection_lost()
        self._auth.reset()
        self._publisher.acks.abandon_all()
        self.stats.live = False
        self.stats.auth = "none"
        self.stats.connected_since = None

    async def _maintain(self, ws: WebSocketConnection) -> None:
        """Keepalive pings, listening-key changes and resubscribing after CLOSED: one timer."""
        next_ping = trio.current_time() + self._keepalive
        while True:
            with trio.move_on_at(min(next_ping, self._sub.resubscribe_at)):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            now = trio.current_time()
            if now >= next_ping:
                next_ping = now + self._keepalive
                # While the core makes us wait, unread messages queue up and no pong can be
                # read: the relay is evidently there, so no ping (and no false alarm).
                if not self._delivering:
                    with trio.fail_after(self._send_timeout):
                        await ws.ping()
            if now >= self._sub.resubscribe_at or self._listening_keys() != self._sub.keys:
                await self._subscribe()

    def _listening_keys(self) -> tuple[str, ...]:
        return tuple(sorted(set(self._context.listening_pubkeys())))

    async def _send(self, frame: str) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionClosed(None)
        with trio.fail_after(self._send_timeout):
            await ws.send_message(frame)

    async def _subscribe(self) -> None:
        request, close_previous = self._sub.renew(self._listening_keys())
        self.stats.live = False
        if request is None:
            log.warning("relay %s: no listening pubkeys, not subscribed", self.url)
        else:
            self.resume.subscribed(self._sub.since)
            await self._send(request)
            self.stats.subscriptions += 1
        if close_previous is not None:
            await self._send(close_previous)

    async def _authenticate(self, again: bool = False) -> bool:
        """Answer the current challenge; False if there is none or auth is off."""
        frame = self._auth.answer(again=again)
        if frame is not None:
            await self._send(frame)
            self.stats.auth = "answered"
        return self._auth.answered

    async def handle_frame(self, raw: str | bytes) -> None:
        """Act on one message from the relay."""
        try:
            frame = parse_frame(raw)
        except FrameError as exc:
            self.stats.frames_invalid += 1
            log.debug("relay %s: ignored frame: %s", self.url, exc)
            return
        match frame:
            case EventFrame():
                await self._on_event(frame)
            case OkFrame():
                self._on_ok(frame)
            case EoseFrame() if self._sub.reached_eose(frame.subscription):
                self.resume.caught_up()
                self.stats.live = True
                self._backoff.reset()
            case ClosedFrame():
                await self._on_closed(frame)
            case NoticeFrame():
                self.stats.notices += 1
                log.info("relay %s: NOTICE %s", self.url, frame.message[:200])
            case AuthFrame():
                self._auth.challenge = frame.challenge
                self.stats.auth = "challenged"
                await self._authenticate()

    async def _on_event(self, frame: EventFrame) -> None:
        try:
            event = check_event_object(
                frame.event, max_bytes=self._settings.max_event_bytes, raw_size=frame.size
            )
        except InvalidEvent as exc:
            self.stats.events_invalid += 1
            log.info("relay %s: dropped an event: %s", self.url, exc.reason)
            return
        listening = set(self._context.listening_pubkeys())
        if event.kind not in self._settings.kinds or listening.isdisjoint(tag_values(event, "p")):
            self.stats.events_ignored += 1
            return
        self.stats.events_in += 1
        now = time.time()
        self._sub.seen(event.created_at, now=now)
        receipt = Receipt()
        self._delivering = True
        try:
            await self._deliver.send(InboundEvent(event, source=self.url, receipt=receipt))
        finally:
            self._delivering = False
        # Only once handed over: one not handed over never holds the resume point back.
        self.resume.taken(event.created_at, receipt, now=now)

    def _on_ok(self, frame: OkFrame) -> None:
        if self._auth.is_answer(frame.event_id):
            if not frame.accepted:
                self.stats.last_error = f"AUTH refused: {frame.message}"
                log.warning("relay %s: AUTH refused: %s", self.url, frame.message)
        elif not self._publisher.acks.resolve(frame.event_id, Ack(frame.accepted, frame.message)):
            log.debug("relay %s: OK for %r, which nobody awaits", self.url, frame.event_id)

    async def _on_closed(self, frame: ClosedFrame) -> None:
        if not self._sub.closed_by_relay(frame.subscription):
            return  # one we replaced and closed ourselves
        self.stats.subscriptions_closed += 1
        self.stats.live = False
        log.warning("relay %s: subscription closed: %s", self.url, frame.message)
        if frame.message.startswith("auth-required:") and not self._sub.auth_retried:
            self._sub.auth_retried = True
            if await self._authenticate(True):
                await self._subscribe()
                return
        self._sub.retry_later(trio.current_time())
        self._wakeup.set()
