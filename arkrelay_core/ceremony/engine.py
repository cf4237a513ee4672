"""The ceremony engine: inbound events in, sessions driven, outcomes out (PROTOCOL.md §2-§6).

Every inbound event reaches :meth:`Engine.handle` after its id was stored. The engine
decrypts and decodes it, and either answers at once (a service request, a refused
intent) or moves a session. Sessions live in the database: every state change commits
with the events it causes (outbox), so the engine can be killed at any point and resume
from the database alone. Several instances may share one PostgreSQL database; a session
is driven by the instance holding its lease (see ``leases.py``).
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..config import Config
from ..errors import ArkRelayError, PluginError, ProtocolViolation
from ..identity import ServiceIdentity
from ..inbound import mark_handled
from ..nostr import Event, first_tag_value
from ..nostr.errors import DecryptError
from ..outbox import enqueue
from ..protocol import ACTION_ALIASES, BUILTIN_PARAMS, Kind, SessionState, decode_content
from ..protocol.signing import SigningResponse
from ..store.models import CeremonySession, EventIn
from .assets import AssetBook
from .db import Store
from .deadlines import Deadlines
from .flows import Flows
from .intents import IntentDesk
from .messages import Messenger
from .records import Transition, take_lease
from .service import ServiceDesk

__all__ = ["IGNORED_PREFIX", "RESPONSE_IGNORED_REASONS", "Engine"]

log = logging.getLogger(__name__)

#: Inbound events handled at once; beyond this the inbound channel backs up.
CONCURRENCY = 64
#: Handled events marked in one transaction at most.
MARK_BATCH = 256
#: Sessions whose author the engine remembers (an LRU: the oldest are forgotten).
AUTHORS_KEPT = 100_000
#: ``stats`` key prefix of ignored 31512s, by reason (see ``RESPONSE_IGNORED_REASONS``).
IGNORED_PREFIX = "responses_ignored_"
#: Why a 31512 was ignored: it did not decrypt, did not decode, its `d` tag names another
#: session or no step, its session is unknown or over, it is not signed by the intent's
#: author, or it answers a step that is not the current one.
RESPONSE_IGNORED_REASONS = (
    "undecryptable",
    "malformed",
    "mismatched_d",
    "closed_session",
    "not_author",
    "not_current",
)


class Engine:
    def __init__(
        self,
        config: Config,
        identity: ServiceIdentity,
        store: Store,
        backends: Mapping[str, Any],
        *,
        hook: Any,
        notify_outbox: Callable[[], None],
        notify: Callable[..., None],
        registry_versions: Mapping[str, str] | None = None,
        intent_types: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.settings = config.ceremony
        self.network = config.gateway.network
        self.identity = identity
        self.store = store
        self.backends = dict(backends)
        self.ark = backends.get("ark")
        self.lightning = backends.get("lightning")
        self.hook = hook
        #: Calls an observer hook; observers that raise are logged, never propagated.
        self.notify = notify
        self.notify_outbox = notify_outbox
        self.instance = self.settings.instance or socket.gethostname()
        self.assets = AssetBook(self.settings)
        self.messages = Messenger(identity)
        self.plugin_versions = dict(registry_versions or {})
        self.intent_types = dict(intent_types or {})
        shadowing = sorted(set(self.intent_types) & {*BUILTIN_PARAMS, *ACTION_ALIASES})
        if shadowing:
            raise PluginError(f"plugin intent types shadow built-in ones: {', '.join(shadowing)}")
        self.params_types = {
            **BUILTIN_PARAMS,
            **{name: spec.params_type for name, spec in self.intent_types.items()},
        }
        self.flows = Flows(self)
        self.deadlines = Deadlines(
            functools.partial(store.guard, "deadlines", self.flows.check_deadline)
        )
        self.intents = IntentDesk(self)
        self.service = ServiceDesk(self)
        self._limiter = trio.CapacityLimiter(CONCURRENCY)
        self._handled_send, self._handled_receive = trio.open_memory_channel[str](CONCURRENCY)
        self._recent: dict[str, collections.deque[float]] = {}
        self._session_locks: dict[str, trio.Lock] = {}
        #: The last turn taken at each session (see :meth:`take_turn`).
        self._session_turns: dict[str, int] = {}
        self._turns = itertools.count(1)
        #: The DM scheme each peer last used: we answer in it (PROTOCOL.md §1).
        self._schemes: collections.OrderedDict[str, str] = collections.OrderedDict()
        #: The author of each session a 31512 named lately (see :meth:`_on_response`).
        self._authors: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._nursery: trio.Nursery | None = None
        self.stats: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------ lifecycle

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.store.run(lambda db: self.assets.record(db))
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.deadlines.serve)
            nursery.start_soon(self.store.supervise, "inbound-marks", self._mark_handled_batches)
            nursery.start_soon(self.store.supervise, "leases", self.flows.leases.keep)
            await nursery.start(self.flows.lift.serve)
            await self.recover_inbound()
            await self.flows.leases.resume_all()
            task_status.started()
            await trio.sleep_forever()

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._nursery is not None, "Engine.serve() has not started"
        self._nursery.start_soon(self.store.guard, "engine", fn, *args)

    def statistics(self) -> Mapping[str, Any]:
        return {**self.stats, "deadlines": len(self.deadlines)}

    def session_lock(self, session_id: str) -> trio.Lock:
        lock = self._session_locks.get(session_id)
        if lock is None:
            lock = self._session_locks[session_id] = trio.Lock()
        return lock

    def forget_lock(self, session_id: str) -> None:
        lock = self._session_locks.get(session_id)
        if lock is not None and not lock.locked():
            del self._session_locks[session_id]
            self._session_turns.pop(session_id, None)

    def take_turn(self, session_id: str) -> int:
        """Note that a task is about to change ``session_id`` (holding its lock, or before
        anyone else can know the session); returns the turn, unique in this process.

        A snapshot a transaction handed over in one turn is what a fresh read would find
        as long as the session's last turn is still that one (:meth:`still_turn`).
        """
        turn = next(self._turns)
        self._session_turns[session_id] = turn
        return turn

    def still_turn(self, session_id: str, turn: int) -> bool:
        return self._session_turns.get(session_id) == turn

    def transitioned(self, transitions: list[Transition] | tuple[Transition, ...]) -> None:
        """After a commit: wake the outbox and tell the observers."""
        self.notify_outbox()
        for t in transitions:
            log.debug("session %s: %s -> %s", t.session_id, t.old, t.new)
            if t.deadline is not None:
                self.deadlines.add(t.session_id, t.deadline)
            if t.old != t.new:
                self.notify(
                    self.hook.arkrelay_session_transition,
                    session=t.view,
                    old=SessionState(t.old),
                    new=SessionState(t.new),
                )

    # ------------------------------------------------------------------ inbound

    async def submit(self, event: Event) -> None:
        """Hand an inbound event over; waits while CONCURRENCY events are in hand."""
        token = object()
        await self._limiter.acquire_on_behalf_of(token)
        self.spawn(self._handle_releasing, event, token)

    async def _handle_releasing(
        self, event: Event, token: object | None, recovered: bool = False
    ) -> None:
        try:
            await self.handle(event, recovered=recovered)
            await self._handled_send.send(event.id)
        finally:
            if token is not None:
                self._limiter.release_on_behalf_of(token)

    async def handle(self, event: Event, *, recovered: bool = False) -> None:
        """Handle one verified, newly stored inbound event (never raises for bad input).

        ``recovered``: the event was stored before a crash and may be partly handled; each
        handler then checks what is already done.
        """
        self.stats[f"kind_{event.kind}"] += 1
        try:
            if event.kind == Kind.INTENT:
                await self.intents.handle(event, recovered=recovered)
            elif event.kind == Kind.SIGNING_RESPONSE:
                await self._on_response(event)
            elif event.kind == Kind.SERVICE_REQUEST:
                await self.service.handle(event, recovered=recovered)
            else:
                self.stats["ignored"] += 1
        except ArkRelayError as exc:
            # Reached only for refusals no session owns (a session's own failures are
            # turned into its 31341 where they happen).
            await self.refuse(event, exc.code, str(exc))

    async def _mark_handled_batches(self) -> None:
        """Mark handled events in batches: one transaction for whatever finished meanwhile.

        The mark only spares a restart from handling the event again, which every handler
        copes with (it checks what is already done), so it may trail the handling.
        """
        async for event_id in self._handled_receive:
            ids = [event_id]
            while len(ids) < MARK_BATCH:
                try:
                    ids.append(self._handled_receive.receive_nowait())
                except trio.WouldBlock:
                    break
            await self.store.run(_mark_handled, ids)

    async def recover_inbound(self, *, others_only: bool = False) -> None:
        """Handle again what was stored but not handled when a gateway stopped: at start,
        this instance's own; later, another instance's once its lease time has passed."""
        events = await self.store.run(
            _unhandled, self.instance, time.time() - self.settings.lease_ttl.seconds, others_only
        )
        if events:
            log.warning("handling %d inbound events left unhandled by a stop", len(events))
        for event in events:
            await self._handle_releasing(event, None, recovered=True)

    def rate_limited(self, pubkey: str, now: float) -> bool:
        window = self._recent.setdefault(pubkey, collections.deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.settings.requests_per_minute:
            return True
        window.append(now)
        if len(self._recent) > 100_000:  # forget the quiet ones; keeps memory bounded
            for key in [k for k, v in self._recent.items() if not v][:50_000]:
                del self._recent[key]
        return False

    async def refuse(
        self,
        event: Event,
        code: ErrorCode,
        message: str,
        *,
        ref_id: str | None = None,
        scheme: str | None = None,
    ) -> None:
        """Answer ``event`` with one 31341 (no session involved)."""
        scheme = scheme or self.scheme_of(event.pubkey)
        self.stats[f"refused_{int(code)}"] += 1
        ref = ref_id or first_tag_value(event, "d") or event.id
        notice = self.messages.failure(
            code,
            author=event.pubkey,
            ref_id=ref,
            answered=[event.id],
            scheme=scheme,
            message=message,
        )
        log.info("refused %s from %s: %d %s", event.id, event.pubkey, code, message)
        await self.store.run(enqueue, notice)
        self.notify_outbox()

    def decrypt(self, event: Event) -> tuple[str, str]:
        """Plaintext and scheme of an encrypted inbound event; ProtocolViolation 1007."""
        addressed = first_tag_value(event, "p") or self.identity.pubkey
        try:
            text, scheme = self.identity.decrypt(addressed, event.pubkey, event.content)
        except (DecryptError, LookupError, ValueError) as exc:
            raise ProtocolViolation(
                f"cannot decrypt: {exc}", code=ErrorCode.CANNOT_DECRYPT
            ) from exc
        self._schemes[event.pubkey] = str(scheme)
        self._schemes.move_to_end(event.pubkey)
        if len(self._schemes) > 100_000:
            self._schemes.popitem(last=False)
        return text, str(scheme)

    def scheme_of(self, pubkey: str) -> str:
        """The scheme to write to ``pubkey`` in: the one it last used, NIP-44 by default."""
        return self._schemes.get(pubkey, "nip44")

    # ------------------------------------------------------------------ responses

    async def _on_response(self, event: Event) -> None:
        """A 31512. Anyone can publish one naming any session (its `d` tag is public), so
        what is not the author's answer to the current step is ignored, never answered
        (PROTOCOL.md §3)."""
        try:
            text, scheme = self.decrypt(event)
            response = decode_content(text, SigningResponse)
        except ProtocolViolation as exc:
            reason = "undecryptable" if exc.code is ErrorCode.CANNOT_DECRYPT else "malformed"
            self.ignore_response(event, reason)
            return
        step = None
        d = first_tag_value(event, "d")
        if d is not None:
            session_id, _, step_text = d.rpartition(":")
            if session_id != response.session_id or not step_text.isdigit():
                self.ignore_response(event, "mismatched_d")
                return
            step = int(step_text)
        author = self._authors.get(response.session_id)
        if author is not None and author != event.pubkey:
            # Known not to be the author's: spares the session its lock and a transaction.
            self.ignore_response(event, "not_author")
            return
        async with self.session_lock(response.session_id):
            turn = self.take_turn(response.session_id)
            outcome = await self.store.run(
                self.flows.record_response, event, response, step, scheme, time.time()
            )
        if outcome is None or outcome["kind"] != "ignored":
            self._remember_author(response.session_id, event.pubkey)
        if outcome is None:
            self.stats["responses_dropped"] += 1
            return
        if outcome["kind"] == "ignored":
            if outcome["reason"] == "closed_session":
                self.forget_lock(response.session_id)  # any id can be named: keep none
            if "author" in outcome:
                self._remember_author(response.session_id, outcome["author"])
            elif outcome["reason"] == "not_current":
                self._remember_author(response.session_id, event.pubkey)
            self.ignore_response(event, outcome["reason"])
            return
        await self.flows.after_response(outcome, turn)

    def _remember_author(self, session_id: str, author: str) -> None:
        """A session's author never changes: remembered, a stranger's 31512 costs no lock."""
        self._authors[session_id] = author
        self._authors.move_to_end(session_id)
        if len(self._authors) > AUTHORS_KEPT:
            self._authors.popitem(last=False)

    def ignore_response(self, event: Event, reason: str) -> None:
        """Count and log a 31512 that must not touch any session."""
        self.stats[f"{IGNORED_PREFIX}{reason}"] += 1
        log.info("ignored 31512 %s from %s: %s", event.id, event.pubkey, reason)

    def lease_ok(self, row: CeremonySession, now: float, *, steal: bool = False) -> bool:
        return take_lease(row, self.instance, self.settings.lease_ttl.seconds, now=now, steal=steal)


def _mark_handled(db: Session, event_ids: list[str]) -> None:
    mark_handled(db, event_ids)


def _unhandled(db: Session, instance: str, lapsed_before: float, others_only: bool) -> list[Event]:
    lapsed = sa.and_(EventIn.handler != instance, EventIn.received_at < int(lapsed_before))
    rows = db.scalars(
        sa.select(EventIn)
        .where(
            EventIn.handled_at.is_(None),
            EventIn.event.is_not(None),
            lapsed if others_only else sa.or_(EventIn.handler == instance, lapsed),
        )
        .order_by(EventIn.received_at)
        .limit(10_000)
        .with_for_update(skip_locked=True)
    ).all()
    now = int(time.time())
    for row in rows:  # claimed: no other instance picks these up while we handle them
        row.handler, row.received_at = instance, now
    return [msgspec.convert(row.event, Event) for row in rows]
