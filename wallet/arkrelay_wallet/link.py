"""A wallet's link to one Nostr relay: a subscription to what is addressed to it,
publishing with the relay's OK, an inbox to take verified, decrypted messages from, and
(optionally) reconnecting, sending again what the gateway may have missed.

Every wait has a timeout; running out raises :class:`CeremonyTimeout`, a
``trio.TooSlowError`` that names what was awaited.
"""

# Every wait takes its own `timeout` on purpose (ASYNC109 prefers a caller's cancel scope):
# running out must fail with a message naming what was awaited, not a bare Cancelled.
# ruff: noqa: ASYNC109

from __future__ import annotations

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
from arkrelay_core.protocol import ENCRYPTED_KINDS, Kind

__all__ = [
    "DEFAULT_TIMEOUT",
    "CeremonyTimeout",
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

#: ``trace(wallet, "->" | "<-", received)``: sent events come with their own plaintext.
Trace = Callable[["RelayLink", str, "Received"], None]


class WalletError(Exception):
    """Something went wrong between the wallet and its relay or gateway."""


class CeremonyTimeout(WalletError, trio.TooSlowError):
    """Something the wallet waited for did not come in time."""


class RelayError(WalletError):
    """The relay closed, refused an event or sent something unreadable."""


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
        self.pubkey = bip340.xonly_public_key(self.secret).hex()
        #: Events refused on arrival (bad shape, id, signature, ciphertext or JSON), with why.
        self.unreadable: list[tuple[Any, str]] = []
        self.notices: list[str] = []
        self._inbox: list[Received] = []
        self._seen: set[str] = set()
        self._arrived = trio.Event()
        self._acks = AckWaiters()
        self._subscribed = trio.Event()
        self._connected = trio.Event()
        self._ws: WebSocketConnection | None = None
        self._stack: AsyncExitStack | None = None
        self._reader_scope: trio.CancelScope | None = None
        #: Intents and signing responses sent, oldest first: after a reconnect they are sent
        #: again, since the gateway may have gone down before it stored them (it ignores
        #: an event id it has seen).
        self._sent: dict[str, Event] = {}

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
        delay = RECONNECT_INITIAL
        with trio.CancelScope() as scope:
            self._reader_scope = scope
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
                for event in list(self._sent.values()):
                    await ws.send_message(event_frame(event))

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
        self._arrived.set()
        self._arrived = trio.Event()

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
        """Send ``event`` and wait for the relay's OK; a refusal is a RelayError
        (``duplicate:`` is not one). With ``reconnect``, a connection lost on the way means
        sending again on the next one, within ``timeout``."""
        if self._stack is None:
            raise RuntimeError("publish on a wallet that is not connected (use `async with`)")
        deadline = trio.current_time() + timeout
        what = f"OK for {_kind_name(event.kind)} {event.id}"
        if event.kind in (Kind.INTENT, Kind.SIGNING_RESPONSE):
            self._sent[event.id] = event
            while len(self._sent) > RESEND_LIMIT:
                del self._sent[next(iter(self._sent))]
        while True:
            await self._wait(
                self._connected, f"a connection to send {event.id}", deadline_left(deadline)
            )
            waiter = self._acks.expect(event.id)
            try:
                ws = self._ws
                assert ws is not None
                try:
                    await ws.send_message(event_frame(event))
                except ConnectionClosed:
                    if not self.reconnect:
                        raise RelayError(f"{self}: connection lost sending {event.id}") from None
                    # The reader has not seen the close yet: give it time to reconnect.
                    await trio.sleep(RECONNECT_INITIAL)
                    continue
                await self._wait(waiter.done, what, deadline_left(deadline))
            finally:
                self._acks.discard(waiter)
            if waiter.ack is not None or not self.reconnect:
                break
        ack = waiter.ack
        if ack is None:
            raise RelayError(f"{self}: connection lost before the OK for {event.id}")
        # An event the relay already holds is published, whatever the OK flag says.
        if not (ack.accepted or ack.message.startswith("duplicate:")):
            raise RelayError(
                f"{self}: relay refused {_kind_name(event.kind)} {event.id}: {ack.message}"
            )
        if self.trace is not None:
            self.trace(self, "->", self._open(event, mine=True))

    async def _take(
        self,
        wanted: Callable[[Received], bool],
        what: str,
        timeout: float,
        order: Callable[[Received], Any] | None = None,
    ) -> Received:
        """Consume the first (or, with ``order``, the least) received message ``wanted``."""
        try:
            with trio.fail_after(timeout):
                while True:
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
