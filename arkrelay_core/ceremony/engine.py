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
import logging
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session

from ..config import Config
from ..errors import ArkRelayError, PluginError
from ..identity import ServiceIdentity
from ..inbound import mark_handled
from ..interfaces import ArkBackend, IntentTypeSpec, LightningBackend
from ..nostr import Event
from ..protocol import ACTION_ALIASES, BUILTIN_PARAMS, Kind
from ..store.models import EventIn
from .assets import AssetBook
from .db import Store
from .deadlines import Deadlines
from .drive import SessionDriver
from .intents import IntentDesk
from .leases import Leases
from .lift import LiftFlows
from .messages import Messenger
from .peers import Peers
from .ports import Ports, Turns
from .records import Transition
from .responses import IGNORED_PREFIX, RESPONSE_IGNORED_REASONS, Responses
from .service import ServiceDesk

__all__ = ["IGNORED_PREFIX", "RESPONSE_IGNORED_REASONS", "Engine"]

log = logging.getLogger(__name__)

#: Inbound events handled at once; beyond this the inbound channel backs up.
CONCURRENCY = 64
#: Handled events marked in one transaction at most.
MARK_BATCH = 256


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
        self.ark: ArkBackend | None = backends.get("ark")
        self.lightning: LightningBackend | None = backends.get("lightning")
        self.hook = hook
        #: Calls an observer hook; observers that raise are logged, never propagated.
        self.notify = notify
        self.notify_outbox = notify_outbox
        self.instance = self.settings.instance or socket.gethostname()
        self.assets = AssetBook(self.settings)
        self.messages = Messenger(identity)
        self.plugin_versions = dict(registry_versions or {})
        self.intent_types: dict[str, IntentTypeSpec] = dict(intent_types or {})
        shadowing = sorted(set(self.intent_types) & {*BUILTIN_PARAMS, *ACTION_ALIASES})
        if shadowing:
            raise PluginError(f"plugin intent types shadow built-in ones: {', '.join(shadowing)}")
        self.params_types = {
            **BUILTIN_PARAMS,
            **{name: spec.params_type for name, spec in self.intent_types.items()},
        }
        self.stats: collections.Counter[str] = collections.Counter()
        self.ports = Ports(
            settings=self.settings,
            network=self.network,
            event_window=config.gateway.event_window.seconds,
            identity=identity,
            instance=self.instance,
            store=store,
            messages=self.messages,
            peers=Peers(
                identity,
                store,
                self.messages,
                self.stats,
                notify_outbox,
                self.settings.requests_per_minute,
            ),
            deadlines=Deadlines(self._deadline_due),
            assets=self.assets,
            ark=self.ark,
            lightning=self.lightning,
            intent_types=self.intent_types,
            params_types=self.params_types,
            turns=Turns(),
            stats=self.stats,
            hook=hook,
            notify=notify,
            notify_outbox=notify_outbox,
            spawn=self.spawn,
        )
        self.deadlines = self.ports.deadlines
        self.driver = SessionDriver(self.ports)
        self.responses = Responses(self.ports, self.driver, self.driver.submitted)
        self.intents = IntentDesk(self.ports, self.driver)
        self.lift = LiftFlows(self.ports)
        self.service = ServiceDesk(self.ports, self.driver, self.lift, self.plugin_versions)
        self.leases = Leases(
            self.ports, self.driver, lambda: self.recover_inbound(others_only=True)
        )
        self._limiter = trio.CapacityLimiter(CONCURRENCY)
        self._handled_send, self._handled_receive = trio.open_memory_channel[str](CONCURRENCY)
        self._nursery: trio.Nursery | None = None

    # ------------------------------------------------------------------ lifecycle

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.store.run(lambda db: self.assets.record(db))
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.deadlines.serve)
            nursery.start_soon(self.store.supervise, "inbound-marks", self._mark_handled_batches)
            nursery.start_soon(self.store.supervise, "leases", self.leases.keep)
            await nursery.start(self.lift.serve)
            await self.recover_inbound()
            await self.leases.resume_all()
            task_status.started()
            await trio.sleep_forever()

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._nursery is not None, "Engine.serve() has not started"
        self._nursery.start_soon(self.store.guard, "engine", fn, *args)

    def statistics(self) -> Mapping[str, Any]:
        return {**self.stats, "deadlines": len(self.deadlines)}

    async def _deadline_due(self, session_id: str) -> None:
        await self.store.guard("deadlines", self.driver.check_deadline, session_id)

    def transitioned(self, transitions: list[Transition] | tuple[Transition, ...]) -> None:
        """After a commit: wake the outbox and tell the observers."""
        self.ports.transitioned(transitions)

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
                await self.responses.handle(event)
            elif event.kind == Kind.SERVICE_REQUEST:
                await self.service.handle(event, recovered=recovered)
            else:
                self.stats["ignored"] += 1
        except ArkRelayError as exc:
            # Reached only for refusals no session owns (a session's own failures are
            # turned into its 31341 where they happen).
            await self.ports.peers.refuse(event, exc.code, str(exc))

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
