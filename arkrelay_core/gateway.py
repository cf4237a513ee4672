"""The gateway: one root nursery that runs every long-lived task.

At this stage it composes what the config enables (transports, backends, settlement),
starts each with trio's start protocol, and takes inbound events from the transports
through one bounded channel into the dedup store. The ceremony engine (sessions,
outcomes, outbox) plugs into the same channel.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import socket
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session, sessionmaker

from .ceremony.db import Store
from .ceremony.engine import Engine
from .config import Config, PluginSection
from .errors import PluginError
from .identity import ServiceIdentity
from .inbound import remember_events
from .interfaces import InboundEvent, PluginContext, Transport
from .nostr import Event
from .outbox import OutboxPublisher, enqueue
from .plugins import PluginRegistry, notify_observers
from .settlement.host import GatewaySettlementHost, run_settlement
from .settlement.leader import Leadership
from .store.retry import DbErrors

__all__ = ["INBOUND_BUFFER", "Gateway", "build_components"]

log = logging.getLogger(__name__)

#: Inbound events waiting for the core. Small on purpose: when the core falls behind,
#: transports feel it (they stop reading) instead of memory growing without bound.
INBOUND_BUFFER = 256
#: Inbound events stored in one transaction at most.
INBOUND_BATCH = 64
#: Blocking database calls in flight at once (SQLite serializes writers anyway).
DB_THREADS = 4
TRANSPORT_BACKOFF_MAX = 60.0


@dataclasses.dataclass
class Components:
    transports: dict[str, Transport]
    backends: dict[str, Any]
    settlement: Any | None

    def all(self) -> dict[str, Any]:
        found: dict[str, Any] = {f"transport.{k}": v for k, v in self.transports.items()}
        found.update({f"backend.{k}": v for k, v in self.backends.items()})
        if self.settlement is not None:
            found["settlement"] = self.settlement
        return found


def build_components(
    config: Config,
    registry: PluginRegistry,
    context_for: Callable[[str], PluginContext],
) -> Components:
    """Call each enabled plugin's factory with its validated settings. No I/O happens here."""

    def build(role: str, section: PluginSection, instance: str) -> Any:
        plugin = registry.get(role, section.plugin)
        try:
            return plugin.spec.factory(section.settings, context_for(instance))
        # Plugin code may raise anything; the operator needs to know whose code it was.
        except Exception as exc:
            raise PluginError(
                f"{plugin.distribution} {plugin.distribution_version}: building {role} "
                f"plugin {section.plugin!r} failed: {type(exc).__name__}: {exc}"
            ) from exc

    transports = {
        name: build("transport", section, name) for name, section in config.transports.items()
    }
    backends = {role: build(role, section, role) for role, section in config.backends.items()}
    settlement = None
    if config.settlement is not None:
        settlement = build("settlement", config.settlement, "settlement")
    return Components(transports, backends, settlement)


class Gateway:
    def __init__(
        self,
        config: Config,
        registry: PluginRegistry,
        identity: ServiceIdentity,
        sessions: sessionmaker[Session],
    ) -> None:
        self.config = config
        self.registry = registry
        self.identity = identity
        self._sessions = sessions
        self._db_limiter = trio.CapacityLimiter(DB_THREADS)
        self._stats = {"inbound": 0, "duplicates": 0, "transport_restarts": 0}
        self._inbound_progress = trio.lowlevel.ParkingLot()
        #: Database errors met by each long-lived task (``arkrelay_db_errors_total``).
        self.db_errors = DbErrors()
        #: Every transaction of this gateway goes through this store's writer: on SQLite
        #: they are committed together in batches (``store/groupcommit.py``).
        self.store = Store(sessions, self._db_limiter, errors=self.db_errors)
        self.components = build_components(config, registry, self._context_for)
        self.outbox = OutboxPublisher(
            sessions,
            self.components.transports,
            config.outbox,
            on_published=self._published,
            db_limiter=self._db_limiter,
            instance=config.ceremony.instance or socket.gethostname(),
            claim_seconds=config.ceremony.lease_ttl.seconds,
            db_errors=self.db_errors,
            store=self.store,
        )
        self._inbound_store = self.store.for_task("inbound", attempts=None)
        used = {s.plugin for s in (*config.transports.values(), *config.backends.values())}
        self.engine = Engine(
            config,
            identity,
            self.store,
            self.components.backends,
            hook=registry.plugin_manager.hook,
            notify_outbox=self.outbox.notify,
            notify=functools.partial(notify_observers, registry.plugin_manager),
            registry_versions={
                p.spec.name: p.distribution_version
                for p in registry.installed
                if p.spec.name in used
            },
            intent_types={
                name: spec for spec in registry.intent_types for name in (spec.type, *spec.aliases)
            },
        )
        self.settlement_host: GatewaySettlementHost | None = None
        self.leadership: Leadership | None = None
        if self.components.settlement is not None:
            self.settlement_host = GatewaySettlementHost(
                self.store.for_task("settlement"),
                identity,
                ark=self.components.backends.get("ark"),
                lightning=self.components.backends.get("lightning"),
                notify_outbox=self.outbox.notify,
            )
            self.leadership = Leadership(sessions.kw["bind"])
        # Imported here: the HTTP stack (quart, hypercorn) is only loaded when configured.
        self.http = None
        if config.http is not None:
            from .http import HttpServer

            self.http = HttpServer(self, config.http)

    def _context_for(self, instance_name: str) -> PluginContext:
        return PluginContext(
            network=self.config.gateway.network,
            data_dir=self.config.gateway.data_dir,
            listening_pubkeys=self.identity.listening_pubkeys,
            sign_event=self.identity.sign_event,
            instance_name=instance_name,
        )

    def _published(self, event: Event) -> None:
        pm = self.registry.plugin_manager
        notify_observers(pm, pm.hook.arkrelay_event_published, event=event)

    async def publish(self, event: Event) -> None:
        """Queue a signed event durably; the outbox publisher sends it until acknowledged."""

        await self.store.for_task("publish").run(enqueue, event)
        self.outbox.notify()

    def statistics(self) -> Mapping[str, Any]:
        return {
            **self._stats,
            "db_errors": self.db_errors.snapshot(),
            "outbox": self.outbox.statistics(),
            "engine": self.engine.statistics(),
            "components": {name: c.statistics() for name, c in self.components.all().items()},
        }

    async def wait_inbound_handled(self, count: int) -> None:
        """Return once ``count`` inbound events (new or duplicate) have been handled."""
        while self._stats["inbound"] + self._stats["duplicates"] < count:
            await self._inbound_progress.park()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        send, receive = trio.open_memory_channel[InboundEvent](INBOUND_BUFFER)
        pm = self.registry.plugin_manager
        async with trio.open_nursery() as nursery:
            for role, backend in self.components.backends.items():
                log.info("starting backend %s", role)
                await nursery.start(backend.serve)
            for name, transport in self.components.transports.items():
                log.info("starting transport %s", name)
                await nursery.start(self._supervise_transport, name, transport, send.clone())
            await nursery.start(self.outbox.serve)
            await nursery.start(self.engine.serve)
            if self.settlement_host is not None and self.leadership is not None:
                await nursery.start(
                    run_settlement,
                    self.components.settlement,
                    self.settlement_host,
                    self.leadership,
                )
            if self.http is not None:
                await nursery.start(self.http.serve)
            nursery.start_soon(self._take_inbound, receive)
            notify_observers(pm, pm.hook.arkrelay_startup, gateway=self)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                notify_observers(pm, pm.hook.arkrelay_shutdown, gateway=self)

    async def _supervise_transport(
        self,
        name: str,
        transport: Transport,
        send: trio.MemorySendChannel[InboundEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run a transport; if it dies, restart it with capped exponential backoff.

        Transports talk to the outside world and may break for reasons outside our
        control, so the gateway does not die with them; every other task that dies takes
        the gateway down. Start-up waits for the transport's first start, successful or
        not, so listeners are bound before the gateway says it is running.
        """
        reported = False
        failures = 0
        while True:
            began = trio.current_time()
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(transport.serve, send)
                    if not reported:
                        reported = True
                        task_status.started()
                return
            # Whatever broke the transport, it is logged, counted and started again.
            except Exception:
                if not reported:
                    reported = True
                    task_status.started()
                if trio.current_time() - began > TRANSPORT_BACKOFF_MAX:
                    failures = 0
                failures += 1
                self._stats["transport_restarts"] += 1
                delay = min(TRANSPORT_BACKOFF_MAX, 0.5 * math.pow(2, failures))
                log.exception("transport %s failed; restarting in %.1fs", name, delay)
                await trio.sleep(delay)

    async def _take_inbound(self, receive: trio.MemoryReceiveChannel[InboundEvent]) -> None:
        async with receive:
            try:
                await self._record_inbound(receive)
            finally:
                # Stopping: what is still queued was never recorded; say so now rather
                # than leave its senders waiting for their deadline.
                left = []
                while True:
                    try:
                        left.append(receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                _settle(left, recorded=False)

    async def _record_inbound(self, receive: trio.MemoryReceiveChannel[InboundEvent]) -> None:
        async for first in receive:
            # Whatever queued up while the last batch was stored is stored together,
            # in one transaction, before any of it is handed to the engine.
            batch = [first]
            while len(batch) < INBOUND_BATCH:
                try:
                    batch.append(receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            fresh = None
            try:
                fresh = await self._remember(batch)
            finally:
                if fresh is None:
                    # Not recorded: whoever waits must not acknowledge these events.
                    _settle(batch, recorded=False)
            if fresh is None:
                continue
            # Committed, body and all: from here a crash loses none of them (a
            # restarted engine handles what it had not), so senders may be told.
            _settle(batch, recorded=True)
            for is_new in fresh:
                self._stats["inbound" if is_new else "duplicates"] += 1
            self._inbound_progress.unpark_all()
            for item, is_new in zip(batch, fresh, strict=True):
                if not is_new:
                    continue
                log.debug(
                    "inbound kind %d id %s from %s",
                    item.event.kind,
                    item.event.id,
                    item.source,
                )
                await self.engine.submit(item.event)

    async def _remember(self, batch: list[InboundEvent]) -> list[bool] | None:
        """Store the batch's ids (see ``remember_events``); None if the database refused.

        While the database is unreachable this keeps trying: the transports back up behind
        the bounded channel meanwhile. Any other database error drops the batch unstored
        (logged, counted) rather than ending the gateway: nothing acted on those events, so
        a copy delivered again (another relay, a resubscription) is handled as new.
        """
        store = functools.partial(remember_events, handler=self.engine.instance)
        try:
            return await self._inbound_store.run(store, [item.event for item in batch])
        except sa.exc.SQLAlchemyError:
            self.db_errors.count("inbound")
            log.exception("inbound: %d events not stored (database error); dropped", len(batch))
            return None


def _settle(batch: list[InboundEvent], *, recorded: bool) -> None:
    for item in batch:
        if item.receipt is not None:
            item.receipt.settle(recorded)
