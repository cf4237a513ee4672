"""The ``relays`` transport: a pool of external relays the gateway subscribes and publishes to."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import trio

from arkrelay_core.interfaces import InboundEvent, PluginContext, PublishResult
from arkrelay_core.nostr import Event

from ..settings import RelaysSettings
from .connection import RelayConnection
from .frames import event_frame
from .recent import RecentIds

__all__ = ["DELIVERY_BUFFER", "KEEPALIVE_INTERVAL", "RECENT_IDS", "RelayPoolTransport"]

log = logging.getLogger(__name__)

#: Verified events between the relay readers and the core's channel. Small: when the core
#: is slow, readers stop and the relays' sockets fill up, nothing piles up here.
DELIVERY_BUFFER = 32
#: Ids remembered for the cross-relay dedup (the core's persisted dedup is the backstop).
RECENT_IDS = 10_000
#: How often each connection pings its relay and checks the listening keys (rotation).
KEEPALIVE_INTERVAL = 30.0


class RelayPoolTransport:
    """Subscribes to every configured relay and publishes to all that are connected.

    One task per relay under :meth:`serve`, each reconnecting on its own with backoff, so
    a dead relay never holds up the others. An event that several relays deliver reaches
    the core once (per transport).
    """

    #: ``nip42``: answers relays' AUTH challenges (unless ``auth = false``).
    features: frozenset[str] = frozenset({"nip42"})

    def __init__(
        self,
        settings: RelaysSettings,
        context: PluginContext,
        *,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
    ) -> None:
        self._settings = settings
        self._context = context
        # Created here, not in serve: events a reader took before a restart are not lost.
        self._send, self._receive = trio.open_memory_channel[InboundEvent](DELIVERY_BUFFER)
        self._connections = [
            RelayConnection(url, settings, context, self._send, keepalive=keepalive_interval)
            for url in dict.fromkeys(settings.relays)
        ]
        self._recent = RecentIds(RECENT_IDS)
        self._delivered = 0
        self._duplicates = 0
        self._serving = False

    @property
    def relays(self) -> tuple[str, ...]:
        return tuple(connection.url for connection in self._connections)

    async def serve(
        self,
        inbound: trio.MemorySendChannel[InboundEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run every relay connection and forward their events to ``inbound`` until cancelled.

        Started as soon as the connection tasks run: relays connect in the background.
        ``inbound`` stays open (the caller owns it and may restart this transport).
        """
        if self._serving:
            raise RuntimeError("RelayPoolTransport.serve is already running")
        self._serving = True
        try:
            async with trio.open_nursery() as nursery:
                for connection in self._connections:
                    nursery.start_soon(connection.run, name=f"relay {connection.url}")
                task_status.started()
                await self._forward(inbound)
        finally:
            self._serving = False

    async def _forward(self, inbound: trio.MemorySendChannel[InboundEvent]) -> None:
        async for item in self._receive:
            if item.event.id in self._recent:
                self._duplicates += 1
                continue
            await inbound.send(item)
            # Only once handed over: an event lost to a cancelled send may come again.
            self._recent.add(item.event.id)
            self._delivered += 1

    async def publish(self, event: Event) -> PublishResult:
        """Send ``event`` to every connected relay; wait for each OK up to ``publish_timeout``.

        A relay that is not connected, or does not answer in time, is in ``timed_out``: its
        outcome is unknown, not failed. ``duplicate:`` counts as accepted whether the relay
        says true (NIP-01) or false (nostr-relay 1.14): the relay has the event either way.
        """
        frame = event_frame(event)
        timeout = self._settings.publish_timeout.seconds
        accepted: set[str] = set()
        rejected: dict[str, str] = {}

        async def one(connection: RelayConnection) -> None:
            with trio.move_on_after(timeout):
                ack = await connection.publish(event.id, frame)
                if ack is None:
                    return
                if ack.accepted or ack.message.startswith("duplicate:"):
                    accepted.add(connection.url)
                else:
                    rejected[connection.url] = ack.message or "error: refused without a reason"

        async with trio.open_nursery() as nursery:
            for connection in self._connections:
                if connection.connected:
                    nursery.start_soon(one, connection)
        answered = accepted | rejected.keys()
        result = PublishResult(
            accepted=tuple(url for url in self.relays if url in accepted),
            rejected={url: rejected[url] for url in self.relays if url in rejected},
            timed_out=tuple(url for url in self.relays if url not in answered),
        )
        log.debug("published %s: %s", event.id, result)
        return result

    def statistics(self) -> Mapping[str, Any]:
        relays = {connection.url: connection.stats.snapshot() for connection in self._connections}
        totals: dict[str, Any] = {
            "relays": len(relays),
            "connected": sum(1 for stats in relays.values() if stats["state"] == "connected"),
            "live": sum(1 for stats in relays.values() if stats["live"]),
            "delivered": self._delivered,
            "duplicates": self._duplicates,
        }
        for counter in ("events_in", "events_invalid", "events_out", "notices"):
            totals[counter] = sum(stats[counter] for stats in relays.values())
        return {"relays": relays, "totals": totals}
