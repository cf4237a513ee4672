"""The ``endpoint`` transport: the gateway itself as a NIP-01 relay wallets connect to."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import hypercorn.trio
import trio

from arkrelay_core.interfaces import InboundEvent, PluginContext, PublishResult
from arkrelay_core.nostr import Event

from .. import __version__
from ..settings import EndpointSettings
from .auth import PRIVATE_KINDS
from .nip11 import relay_information, supported_nips
from .relay import Counters, Relay
from .server import RelayApp, hypercorn_config, ws_url
from .store import EventStore, StoreError

__all__ = ["STORE_FILE", "EndpointTransport"]

log = logging.getLogger(__name__)

STORE_FILE = "endpoint-events.sqlite3"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class EndpointTransport:
    """A websocket server on ``settings.listen`` speaking NIP-01, NIP-11, NIP-40, NIP-42.

    Wallets publish to it directly; events addressed to the gateway go to the core, and
    what the gateway publishes here reaches the wallets subscribed to it.
    """

    def __init__(self, settings: EndpointSettings, context: PluginContext) -> None:
        self.settings = settings
        self.context = context
        self.features = frozenset(f"nip{n:02d}" for n in supported_nips(settings))
        self._counters = Counters()
        self._relay: Relay | None = None
        self._bound_url: str | None = None

    @property
    def url(self) -> str:
        """The URL it listens on: the real port once serving, even when configured as 0."""
        return self._bound_url or f"ws://{self.settings.listen}"

    @property
    def relay_urls(self) -> tuple[str, ...]:
        """URLs a NIP-42 AUTH event may name: the public one (if set) and the bound one."""
        urls = [self.url]
        if self.settings.public_url:
            urls.insert(0, self.settings.public_url)
        return tuple(urls)

    @property
    def store_path(self) -> Path:
        """``endpoint-events.sqlite3`` in the data dir; a second endpoint instance in the
        same gateway (``[transport.other]``) gets ``endpoint-other-events.sqlite3``."""
        name = self.context.instance_name
        if name in ("", "endpoint") or not _SAFE_NAME.fullmatch(name):
            return self.context.data_dir / STORE_FILE
        return self.context.data_dir / f"endpoint-{name}-events.sqlite3"

    def _information(self) -> bytes:
        listening = self.context.listening_pubkeys()
        return relay_information(
            self.settings, pubkey=listening[0] if listening else None, version=__version__
        )

    async def serve(
        self,
        inbound: trio.MemorySendChannel[InboundEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        if self._relay is not None:
            raise RuntimeError("this endpoint is already serving")
        store = await EventStore.open(
            self.store_path, max_events=self.settings.max_stored_events, private_kinds=PRIVATE_KINDS
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.run_writer)
                relay = Relay(self.settings, self.context, store, inbound, self._counters, nursery)
                app = RelayApp(relay, self._information)
                serve = partial(hypercorn.trio.serve, app, hypercorn_config(self.settings))
                binds: list[str] = await nursery.start(serve)
                self._bound_url = ws_url(binds[0])
                relay.relay_urls = self.relay_urls
                self._relay = relay
                log.info("endpoint listening on %s", self._bound_url)
                task_status.started()
        finally:
            self._relay = None
            self._bound_url = None
            await store.aclose()

    async def publish(self, event: Event) -> PublishResult:
        """Store ``event`` and send it to every matching subscription; no relay to wait for."""
        relay = self._relay
        if relay is None:
            return PublishResult(rejected={self.url: "error: the endpoint is not running"})
        try:
            await relay.publish(event)
        except StoreError as exc:
            log.error("endpoint could not store published event %s: %s", event.id, exc)
            return PublishResult(rejected={self.url: "error: could not store the event"})
        return PublishResult(accepted=(self.url,))

    def statistics(self) -> Mapping[str, Any]:
        counters = self._counters
        running = self._relay.statistics() if self._relay is not None else {}
        return {
            "url": self.url,
            "running": self._relay is not None,
            "connections": running.get("connections", 0),
            "connections_closing": running.get("connections_closing", 0),
            "connections_total": counters.connections_total,
            "subscriptions": running.get("subscriptions", 0),
            "events_accepted": counters.accepted,
            "events_rejected": dict(counters.rejected),
            "events_stored": running.get("events_stored", 0),
            "subscriptions_refused": dict(counters.refused_subscriptions),
            "notices": counters.notices,
            "published": counters.published,
            "slow_disconnects": counters.slow_disconnects,
            "connections_refused": counters.connections_refused,
        }
