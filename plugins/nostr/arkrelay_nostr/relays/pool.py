"""The ``relays`` transport: a pool of external relays the gateway subscribes and publishes to."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from arkrelay_core.interfaces import InboundEvent, PluginContext, PublishResult, Receipt
from arkrelay_core.nostr import Event

from ..settings import RelaysSettings
from .connection import RelayConnection
from .frames import event_frame
from .recent import RecentIds
from .resume import ResumeFile

__all__ = [
    "DELIVERY_BUFFER",
    "KEEPALIVE_INTERVAL",
    "RECENT_IDS",
    "RESUME_FILE",
    "RESUME_SAVE_INTERVAL",
    "RelayPoolTransport",
]

log = logging.getLogger(__name__)

#: Verified events between the relay readers and the core's channel. Small: when the core
#: is slow, readers stop and the relays' sockets fill up, nothing piles up here.
DELIVERY_BUFFER = 32
#: Ids remembered for the cross-relay dedup (the core's persisted dedup is the backstop).
RECENT_IDS = 10_000
#: How often each connection pings its relay and checks the listening keys (rotation).
KEEPALIVE_INTERVAL = 30.0
#: Each relay's resume point, in the gateway's data dir.
RESUME_FILE = "relays-resume.json"
#: How often recorded events move the resume points on disk. A point written late only
#: means asking a relay again for events the core already has, never missing one.
RESUME_SAVE_INTERVAL = 1.0
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


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
        self._resume: ResumeFile | None = None
        self._resume_saved: dict[str, int] = {}
        #: (receipt of a dropped duplicate, receipt of the copy delivered first)
        self._following: list[tuple[Receipt, Receipt]] = []

    @property
    def relays(self) -> tuple[str, ...]:
        return tuple(connection.url for connection in self._connections)

    @property
    def resume_path(self) -> Path:
        """``relays-resume.json`` in the data dir; a second pool instance in the same
        gateway (``[transport.other]``) gets ``relays-other-resume.json``."""
        name = self._context.instance_name
        if name in ("", "relays") or not _SAFE_NAME.fullmatch(name):
            return self._context.data_dir / RESUME_FILE
        return self._context.data_dir / f"relays-{name}-resume.json"

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
            if self._resume is None:
                await self._restore()
            async with trio.open_nursery() as nursery:
                for connection in self._connections:
                    nursery.start_soon(connection.run, name=f"relay {connection.url}")
                nursery.start_soon(self._keep_resume_points)
                task_status.started()
                await self._forward(inbound)
        finally:
            self._serving = False

    async def _restore(self) -> None:
        """Once per process: resume each relay where the last process had everything
        recorded, and keep this start as the point of relays that had none (a crash
        before anything is recorded must not skip what this process was sent)."""
        resume = ResumeFile(self.resume_path)
        kept = await trio.to_thread.run_sync(resume.load)
        for connection in self._connections:
            if connection.url in kept:
                connection.restore(kept[connection.url])
        self._resume = resume
        await self._save_resume_points()

    async def _keep_resume_points(self) -> None:
        try:
            while True:
                await trio.sleep(RESUME_SAVE_INTERVAL)
                await self._save_resume_points()
        finally:
            # Stopping: what the core recorded meanwhile need not be asked for again.
            with trio.CancelScope(shield=True), trio.move_on_after(RESUME_SAVE_INTERVAL * 5):
                await self._save_resume_points()

    async def _save_resume_points(self) -> None:
        waiting = []
        for dropped, delivered in self._following:
            if delivered.settled:
                dropped.settle(delivered.recorded)
            else:
                waiting.append((dropped, delivered))
        self._following = waiting
        for connection in self._connections:
            connection.resume.advance()
        points = {c.url: c.resume.recorded for c in self._connections}
        resume = self._resume
        if resume is None or points == self._resume_saved:
            return
        try:
            await trio.to_thread.run_sync(resume.save, points)
        except OSError as exc:
            # The old points stay on disk, which is safe; the next tick tries again.
            log.warning("relays: cannot save resume points to %s: %s", resume.path, exc)
            return
        self._resume_saved = points

    async def _forward(self, inbound: trio.MemorySendChannel[InboundEvent]) -> None:
        async for item in self._receive:
            if item.event.id in self._recent:
                self._duplicates += 1
                if item.receipt is not None:
                    delivered = self._recent.receipt(item.event.id)
                    if delivered is None:
                        item.receipt.settle(True)
                    else:
                        # This relay's resume point waits on the core's word about the
                        # copy that went first.
                        self._following.append((item.receipt, delivered))
                continue
            handed = False
            try:
                await inbound.send(item)
                handed = True
            finally:
                if not handed and item.receipt is not None:
                    # Never handed over: its relay's resume point stays before it, and a
                    # restarted process asks for it again.
                    item.receipt.settle(False)
            # Only once handed over: an event lost to a cancelled send may come again.
            self._recent.add(item.event.id, item.receipt)
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
