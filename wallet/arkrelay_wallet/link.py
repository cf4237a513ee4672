"""A wallet's link to one Nostr relay: a subscription to what is addressed to it,
publishing with the relay's OK, an inbox to take verified, decrypted messages from, and
(optionally) reconnecting, sending again what the gateway may have missed.

Every publish waits for its OK and is judged by :mod:`.delivery`: ``rate-limited:``,
``error:``, no OK in time and a connection lost before the OK are tried again after a
growing pause, until the publish's timeout; other refusals raise
:class:`PublishRefused` with the relay's reason.

Every wait has a timeout; running out raises :class:`CeremonyTimeout`, a
``trio.TooSlowError`` that names what was awaited.
"""

# Every wait takes its own `timeout` on purpose (ASYNC109 prefers a caller's cancel scope):
# running out must fail with a message naming what was awaited, not a bare Cancelled.
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import msgspec
import trio
from arkrelay_nostr.relays.acks import Ack, AckWaiters
from arkrelay_nostr.relays.frames import (
    ClosedFrame,
    EoseFrame,
    EventFrame,
    FrameError,
    NoticeFrame,
    OkFrame,
    event_frame,
    parse_frame,
    req_frame,
)
from arkrelay_nostr.relays.websocket import CONNECTION_ERRORS, open_relay_socket
from trio_websocket import ConnectionClosed, WebSocketConnection

from arkrelay_core.nostr import (
    DecryptError,
    Event,
    bip340,
    decrypt_dm,
    tag_values,
    verify_event,
)
from arkrelay_core.protocol import ENCRYPTED_KINDS, Kind, session_id_for

from .delivery import Backoff, Pacer, Verdict, judge, reason_prefix

__all__ = [
    "DEFAULT_TIMEOUT",
    "CeremonyTimeout",
    "PublishRefused",
    "Received",
    "RelayError",
    "RelayLink",
    "Trace",
    "WalletError",
    "deadline_left",
    "find_error",
]

DEFAULT_TIMEOUT = 30.0
#: Unconsumed messages a wallet holds; more means a test stopped reading, which it should hear.
INBOX_LIMIT = 1024
MAX_MESSAGE_SIZE = 4 * 1024 * 1024
SUBSCRIPTION_ID = "wallet"
RECONNECT_INITIAL = 0.2
RECONNECT_MAX = 2.0
#: Intents and responses kept to send again after a reconnect.
RESEND_LIMIT = 256
#: How long one attempt waits for its OK before the event is sent again.
ACK_TIMEOUT = 10.0
#: Pauses between attempts at one event refused for the moment.
BACKOFF = Backoff(initial=0.25, maximum=4.0)
#: Sends again go out at most this often: 5 a second, half the endpoint's default
#: per-pubkey rate, so a reconnect does not spend the wallet's whole allowance at once.
RESEND_INTERVAL = 0.2
#: How long an event resent after a reconnect keeps being tried.
RESEND_WINDOW = 120.0
_RESENT_KINDS = (Kind.INTENT, Kind.SIGNING_RESPONSE)

#: ``trace(wallet, "->" | "<-", received)``: sent events come with their own plaintext.
Trace = Callable[["RelayLink", str, "Received"], None]


class WalletError(Exception):
    """Something went wrong between the wallet and its relay or gateway."""


class CeremonyTimeout(WalletError, trio.TooSlowError):
    """Something the wallet waited for did not come in time."""


class RelayError(WalletError):
    """The relay closed, refused an event or sent something unreadable."""


class PublishRefused(RelayError):
    """The relay refused an event for good (not ``rate-limited:`` / ``error:``)."""

    def __init__(self, message: str, *, event_id: str, reason: str) -> None:
        super().__init__(message)
        self.event_id = event_id
        #: The relay's own words, prefix included (``invalid: ...``).
        self.reason = reason


class Received(msgspec.Struct, frozen=True):
    """A verified inbound event; ``content`` is decrypted and JSON-decoded."""

    event: Event
    content: dict[str, Any]
    #: The encryption scheme for encrypted kinds ("nip44" / "nip04"), None for public ones.
    scheme: str | None


def _kind_name(kind: int) -> str:
    try:
        return f"{kind} ({Kind(kind).name.lower()})"
    except ValueError:
        return str(kind)


def deadline_left(deadline: float) -> float:
    return max(0.0, deadline - trio.current_time())


class RelayLink:
    #: Kinds the wallet hears when they are addressed to it by `p` tag.
    ADDRESSED_KINDS: tuple[int, ...] = (
        Kind.SERVICE_RESPONSE,
        Kind.NOTIFICATION,
        Kind.CHALLENGE,
        Kind.CONFIRMATION,
        Kind.FAILURE,
    )

    def __init__(
        self,
        relay_url: str,
        gateway_pubkey: str,
        *,
        secret: bytes | None = None,
        reconnect: bool = False,
        trace: Trace | None = None,
    ) -> None:
        self.relay_url = relay_url
        #: Reconnect when the relay goes away (and send again what may not have reached the
        #: gateway), instead of failing with RelayError.
        self.reconnect = reconnect
        #: Called with every event sent (after the relay's OK) and every event received.
        self.trace = trace
        self.reconnects = 0
        self.gateway_pubkey = gateway_pubkey
        self.secret = secret if secret is not None else bip340.generate_secret_key()
        #: The secret prepared once for signing: no key derivation per event or payload.
        self.key = bip340.SigningKey(self.secret)
        self.pubkey = self.key.public_key_hex
        #: Events refused on arrival (bad shape, id, signature, ciphertext or JSON), with why.
        self.unreadable: list[tuple[Any, str]] = []
        self.notices: list[str] = []
        #: Attempts sent again, by what the relay said ("rate-limited", "error") or
        #: "no answer" (no OK in time, connection lost).
        self.retried: Counter[str] = Counter()
        self._inbox: list[Received] = []
        self._seen: set[str] = set()
        self._arrived = trio.Event()
        self._acks = AckWaiters()
        self._subscribed = trio.Event()
        self._connected = trio.Event()
        self._ws: WebSocketConnection | None = None
        self._stack: AsyncExitStack | None = None
        self._reader_scope: trio.CancelScope | None = None
        self._background: trio.Nursery | None = None
        #: Intents and signing responses sent, oldest first (what answers them concerns
        #: this wallet).
        self._sent: dict[str, Event] = {}
        #: Those whose session has no outcome yet, with their session: after a reconnect
        #: they are sent again, since the gateway may have gone down before it stored them
        #: (it ignores an event id it has seen).
        self._pending: dict[str, tuple[Event, str]] = {}
        #: Event ids some task is sending now (a publish, or a resend after a reconnect).
        self._in_flight: Counter[str] = Counter()
        self._pacer = Pacer(RESEND_INTERVAL)
        #: Sessions whose intent or response could not be sent again after a reconnect,
        #: with why: who waits for that session's outcome hears it (PublishRefused).
        self.undelivered: dict[str, PublishRefused | CeremonyTimeout] = {}

    def __repr__(self) -> str:
        return f"Wallet({self.pubkey[:12]}…)"

    # -- connection -------------------------------------------------------------------

    def filters(self) -> list[dict[str, Any]]:
        return [
            {"kinds": [int(k) for k in self.ADDRESSED_KINDS], "#p": [self.pubkey]},
            {"kinds": [int(Kind.CONFIRMATION)], "authors": [self.gateway_pubkey]},
        ]

    async def __aenter__(self) -> RelayLink:
        async with AsyncExitStack() as stack:
            nursery = await stack.enter_async_context(trio.open_nursery())
            await nursery.start(self._stay_connected)
            # Runs first on exit, so the reader is gone before the nursery waits for it.
            stack.callback(self._stop_reader)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None, "wallet was not entered"
        return await stack.__aexit__(*exc_info)

    def _stop_reader(self) -> None:
        if self._reader_scope is not None:
            self._reader_scope.cancel()

    async def _stay_connected(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Hold one connection with the subscription open; with ``reconnect``, open a new
        one whenever the relay goes away. The first connection must succeed."""
        with trio.CancelScope() as scope:
            self._reader_scope = scope
            # Resends after a reconnect run here, so they end with the link.
            async with trio.open_nursery() as background:
                self._background = background
                await self._connect_again_and_again(task_status)

    async def _connect_again_and_again(self, task_status: trio.TaskStatus[None]) -> None:
        delay = RECONNECT_INITIAL
        first = True
        while True:
            try:
                await self._connection(first, task_status)
                first = False
                delay = RECONNECT_INITIAL
            except CONNECTION_ERRORS as exc:
                if first:
                    raise RelayError(f"{self}: cannot reach {self.relay_url}: {exc!r}") from exc
            self._ws = None
            # Only a set flag is replaced: publishes already waiting for a connection hold
            # the unset one, and the next connection must wake them.
            if self._connected.is_set():
                self._connected = trio.Event()
            # Whoever waits for an OK on the lost connection sends again on the next.
            self._acks.abandon_all()
            if not self.reconnect:
                raise RelayError(f"{self}: relay {self.relay_url} closed the connection")
            await trio.sleep(delay)
            delay = min(RECONNECT_MAX, delay * 2)

    async def _connection(self, first: bool, task_status: trio.TaskStatus[None]) -> None:
        async with (
            open_relay_socket(
                self.relay_url,
                connect_timeout=DEFAULT_TIMEOUT,
                disconnect_timeout=DEFAULT_TIMEOUT,
                max_message_size=MAX_MESSAGE_SIZE,
            ) as ws,
            trio.open_nursery() as nursery,
        ):
            self._subscribed = trio.Event()
            nursery.start_soon(self._read, ws)
            await ws.send_message(req_frame(SUBSCRIPTION_ID, *self.filters()))
            await self._wait(self._subscribed, f"EOSE for the subscription on {self.relay_url}")
            self._ws = ws
            self._connected.set()
            if first:
                task_status.started()
            else:
                self.reconnects += 1
                self._resend_pending()

    async def _read(self, ws: WebSocketConnection) -> None:
        """Read frames until the connection closes (which returns)."""
        while True:
            try:
                raw = await ws.get_message()
            except ConnectionClosed:
                return
            try:
                frame = parse_frame(raw)
            except FrameError as exc:
                raise RelayError(f"{self}: unreadable relay frame: {exc}") from exc
            self._on_frame(frame)

    def _on_frame(self, frame: object) -> None:
        if isinstance(frame, EventFrame) and frame.subscription == SUBSCRIPTION_ID:
            self._accept(frame.event)
        elif isinstance(frame, OkFrame):
            self._acks.resolve(frame.event_id, Ack(frame.accepted, frame.message))
        elif isinstance(frame, EoseFrame) and frame.subscription == SUBSCRIPTION_ID:
            self._subscribed.set()
        elif isinstance(frame, ClosedFrame) and frame.subscription == SUBSCRIPTION_ID:
            raise RelayError(f"{self}: relay closed the subscription: {frame.message}")
        elif isinstance(frame, NoticeFrame):
            self.notices.append(frame.message)

    def _accept(self, obj: Any) -> None:
        try:
            event = msgspec.convert(obj, Event)
        except msgspec.ValidationError as exc:
            self.unreadable.append((obj, f"malformed event: {exc}"))
            return
        if not verify_event(event):
            self.unreadable.append((event, "bad id or signature"))
            return
        if event.id in self._seen:
            return
        self._seen.add(event.id)
        try:
            received = self._open(event)
        except (DecryptError, msgspec.DecodeError, ValueError) as exc:
            self.unreadable.append((event, f"unreadable content: {exc}"))
            return
        if self.trace is not None:
            self.trace(self, "<-", received)
        if len(self._inbox) >= INBOX_LIMIT:
            raise RelayError(f"{self}: {INBOX_LIMIT} messages received and not consumed")
        self._inbox.append(received)
        self._drop_settled(event)
        self._wake()

    def _open(self, event: Event, *, mine: bool = False) -> Received:
        """Decrypt and decode ``event``; ``mine`` for one this wallet sent the gateway."""
        text, scheme = event.content, None
        if event.kind in ENCRYPTED_KINDS:
            peer = self.gateway_pubkey if mine else event.pubkey
            text, scheme = decrypt_dm(self.secret, peer, event.content)
        content = msgspec.json.decode(text)
        if not isinstance(content, dict):
            raise ValueError(f"content is JSON {type(content).__name__}, not an object")
        return Received(event, content, None if scheme is None else scheme.value)

    async def _wait(self, flag: trio.Event, what: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        try:
            with trio.fail_after(timeout):
                await flag.wait()
        except trio.TooSlowError as exc:
            raise CeremonyTimeout(f"{self}: no {what} within {timeout} s") from exc

    # -- talking to the relay ---------------------------------------------------------

    async def publish(self, event: Event, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Send ``event`` until the relay holds it (``OK true``, or ``duplicate:``),
        within ``timeout``. ``rate-limited:``, ``error:``, no OK within ``ACK_TIMEOUT`` and
        (with ``reconnect``) a connection lost before the OK mean sending it again after a
        pause; running out of time is a CeremonyTimeout naming the last answer. Any other
        refusal is a PublishRefused carrying the relay's reason."""
        if self._stack is None:
            raise RuntimeError("publish on a wallet that is not connected (use `async with`)")
        deadline = trio.current_time() + timeout
        if event.kind in _RESENT_KINDS:
            self._remember(event)
        self._in_flight[event.id] += 1
        try:
            await self._deliver(event, deadline, paced=False)
        finally:
            self._in_flight[event.id] -= 1
            if not self._in_flight[event.id]:
                del self._in_flight[event.id]
        if self.trace is not None:
            self.trace(self, "->", self._open(event, mine=True))

    def _remember(self, event: Event) -> None:
        if event.kind == Kind.INTENT:
            session = session_id_for(event.id)
        else:
            try:
                session = str(self._open(event, mine=True).content.get("session_id"))
            except (DecryptError, msgspec.DecodeError, ValueError):
                # A response broken on purpose still goes again; no outcome settles it.
                session = f"unreadable:{event.id}"
        self._sent[event.id] = event
        self._pending[event.id] = (event, session)
        for kept in (self._sent, self._pending):
            while len(kept) > RESEND_LIMIT:
                del kept[next(iter(kept))]

    async def _deliver(self, event: Event, deadline: float, *, paced: bool) -> None:
        what = f"{_kind_name(event.kind)} {event.id}"
        failures = 0
        while True:
            verdict, reason = await self._attempt(event, deadline, paced=paced)
            if verdict is Verdict.PUBLISHED:
                return
            if verdict is Verdict.REFUSED:
                raise PublishRefused(
                    f"{self}: relay refused {what}: {reason}", event_id=event.id, reason=reason
                )
            failures += 1
            self.retried[reason_prefix(reason) or "no answer"] += 1
            pause = BACKOFF.pause(failures)
            if trio.current_time() + pause >= deadline:
                raise CeremonyTimeout(
                    f"{self}: no OK for {what} in time: {failures} attempt(s), last: {reason}"
                )
            await trio.sleep(pause)
            # A second attempt is a send again: it queues behind the others.
            paced = True

    async def _attempt(self, event: Event, deadline: float, *, paced: bool) -> tuple[Verdict, str]:
        """Send ``event`` once and judge the answer; a missing answer is a RETRY."""
        await self._wait(
            self._connected, f"a connection to send {event.id}", deadline_left(deadline)
        )
        if paced:
            try:
                with trio.fail_at(deadline):
                    await self._pacer.turn()
            except trio.TooSlowError as exc:
                raise CeremonyTimeout(f"{self}: no turn to send {event.id} again") from exc
        ws = self._ws
        if ws is None:
            return Verdict.RETRY, "connection lost before sending"
        waiter = self._acks.expect(event.id)
        try:
            try:
                await ws.send_message(event_frame(event))
            except ConnectionClosed:
                if not self.reconnect:
                    raise RelayError(f"{self}: connection lost sending {event.id}") from None
                return Verdict.RETRY, "connection lost while sending"
            wait = min(ACK_TIMEOUT, deadline_left(deadline))
            with trio.move_on_after(wait):
                await waiter.done.wait()
        finally:
            self._acks.discard(waiter)
        if not waiter.done.is_set():
            return Verdict.RETRY, f"no OK within {wait:g} s"
        ack = waiter.ack
        if ack is None:
            if not self.reconnect:
                raise RelayError(f"{self}: connection lost before the OK for {event.id}")
            return Verdict.RETRY, "connection lost before the OK"
        return judge(ack.accepted, ack.message), ack.message

    def _resend_pending(self) -> None:
        """After a reconnect: send again, one at a time, each intent and response whose
        session has no outcome yet and that no publish is sending right now."""
        waiting = [
            (event, session)
            for event_id, (event, session) in self._pending.items()
            if event_id not in self._in_flight
        ]
        if waiting and self._background is not None:
            for event, _ in waiting:
                self._in_flight[event.id] += 1
            self._background.start_soon(self._resend, waiting)

    async def _resend(self, waiting: list[tuple[Event, str]]) -> None:
        deadline = trio.current_time() + RESEND_WINDOW
        for event, session in waiting:
            try:
                if event.id in self._pending:
                    await self._deliver(event, deadline, paced=True)
            except (PublishRefused, CeremonyTimeout) as exc:
                self._pending.pop(event.id, None)
                self.undelivered[session] = exc
                self._wake()
            finally:
                self._in_flight[event.id] -= 1
                if not self._in_flight[event.id]:
                    del self._in_flight[event.id]

    def _drop_settled(self, event: Event) -> None:
        """An outcome of the gateway ends its session: nothing of it needs sending again."""
        if event.pubkey != self.gateway_pubkey:
            return
        if event.kind not in (Kind.CONFIRMATION, Kind.FAILURE):
            return
        sessions = {self._pending[e][1] for e in tag_values(event, "e") if e in self._pending}
        for event_id in [i for i, (_, s) in self._pending.items() if s in sessions]:
            del self._pending[event_id]

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = trio.Event()

    async def _take(
        self,
        wanted: Callable[[Received], bool],
        what: str,
        timeout: float,
        order: Callable[[Received], Any] | None = None,
        session: str | None = None,
    ) -> Received:
        """Consume the first (or, with ``order``, the least) received message ``wanted``;
        for a ``session`` whose intent or response could not be sent again after a
        reconnect, raise why instead of waiting for an outcome that cannot come."""
        try:
            with trio.fail_after(timeout):
                while True:
                    failed = self.undelivered.get(session) if session is not None else None
                    if failed is not None:
                        raise failed
                    candidates = [r for r in self._inbox if wanted(r)]
                    if candidates:
                        chosen = min(candidates, key=order) if order else candidates[0]
                        self._inbox.remove(chosen)
                        return chosen
                    await self._arrived.wait()
        except trio.TooSlowError as exc:
            pending = ", ".join(f"{r.event.kind}:{r.event.id[:12]}" for r in self._inbox)
            raise CeremonyTimeout(
                f"{self}: no {what} within {timeout} s (unconsumed: [{pending}], "
                f"unreadable: {len(self.unreadable)})"
            ) from exc

    async def next(
        self,
        kind: int,
        *,
        match: Callable[[Received], bool] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Received:
        """The next not yet consumed message of ``kind`` for which ``match`` holds."""

        def wanted(received: Received) -> bool:
            return received.event.kind == kind and (match is None or match(received))

        label = getattr(match, "__name__", "a predicate") if match is not None else None
        what = _kind_name(kind) + (f" matching {label}" if label else "")
        return await self._take(wanted, what, timeout)

    def concerns(self, event: Event) -> bool:
        """Whether ``event`` is about this wallet: addressed to it, or answering one of its
        intents. Confirmations are public, so a wallet also hears everyone else's."""
        return self.pubkey in tag_values(event, "p") or any(
            e in self._sent for e in tag_values(event, "e")
        )


def find_error(exc: BaseException, types: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of ``types`` in ``exc`` or, nested, in its exception groups:
    what a wallet raised inside nurseries, to report without the groups around it."""
    if isinstance(exc, types):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_error(inner, types)
            if found is not None:
                return found
    return None
