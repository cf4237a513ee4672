"""What the endpoint's connections share: the store, the live fan-out, the core's inbox."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import trio

from arkrelay_core.interfaces import InboundEvent, PluginContext, Receipt
from arkrelay_core.nostr import Event, encode_event, tag_values

from ..settings import INBOUND_KINDS, EndpointSettings
from .limits import KeyedBuckets
from .store import AddOutcome, EventStore, StoreError, expiration

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Counters", "Relay", "prefix"]

log = logging.getLogger(__name__)


class Counters:
    """Running totals, kept by the transport across restarts of ``serve``."""

    def __init__(self) -> None:
        self.connections_total = 0
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.refused_subscriptions: Counter[str] = Counter()
        self.notices = 0
        self.published = 0
        self.slow_disconnects = 0
        self.connections_refused = 0


def prefix(reason: str) -> str:
    """The machine-readable part of a NIP-01 reason (``"rate-limited"``)."""
    head, sep, _ = reason.partition(":")
    return head if sep else "other"


class Relay:
    """One running endpoint: shared by every connection for the life of ``serve``."""

    def __init__(
        self,
        settings: EndpointSettings,
        context: PluginContext,
        store: EventStore,
        inbound: trio.MemorySendChannel[InboundEvent],
        counters: Counters,
        nursery: trio.Nursery,
    ) -> None:
        self.settings = settings
        self.context = context
        self.store = store
        self.inbound = inbound
        self.counters = counters
        #: Where each connection's sending task runs (see :mod:`.outbox`).
        self.nursery = nursery
        #: URLs an AUTH event may name as this relay (known once it is bound).
        self.relay_urls: tuple[str, ...] = ()
        self.connections: set[Connection] = set()
        #: Cut off, but their socket not closed yet (a write to them is stalled).
        self.closing: set[Connection] = set()
        self._by_pubkey = KeyedBuckets(settings.events_per_second_per_pubkey)

    def next_connection_id(self) -> int:
        """Ids count on across restarts, so ``endpoint:<id>`` in logs names one client."""
        self.counters.connections_total += 1
        return self.counters.connections_total

    def _addressed_to_gateway(self, event: Event) -> bool:
        if event.kind not in INBOUND_KINDS:
            return False
        listening = set(self.context.listening_pubkeys())
        return any(pubkey in listening for pubkey in tag_values(event, "p"))

    async def submit(self, event: Event, source: str) -> tuple[bool, str]:
        """Take a verified event from a client; returns the OK answer (accepted, reason)."""
        ahead = self.settings.max_created_at_ahead.seconds
        if event.created_at > time.time() + ahead:
            return False, f"invalid: created_at is more than {ahead:.0f} s in the future"
        expires = expiration(event)
        if expires is not None and expires <= time.time():
            return False, "invalid: event has expired (NIP-40)"
        if not self._by_pubkey.try_take(event.pubkey):
            return False, "rate-limited: too many events from this pubkey, slow down"
        raw = encode_event(event).decode()
        try:
            outcome = await self.store.add(event, raw)
        except StoreError:
            log.exception("endpoint could not store event %s", event.id)
            return False, "error: could not store the event, try again later"
        if self._addressed_to_gateway(event):
            # Duplicates go on too: the core dedups by id, and a wallet that resends after
            # an OK false (or a lost OK) must still reach it.
            refused = await self._hand_to_core(event, source)
            if refused is not None:
                return False, refused
        if outcome is AddOutcome.DUPLICATE:
            return True, "duplicate: already have this event"
        if outcome is AddOutcome.SUPERSEDED:
            return True, "duplicate: a newer version of this event is stored"
        self.fan_out(event, raw)
        return True, ""

    async def _hand_to_core(self, event: Event, source: str) -> str | None:
        """Give the event to the core and wait until it is recorded durably: ``OK true``
        tells the wallet it need never send it again, so it must survive a crash that
        comes right after. Returns the OK false reason, or None once recorded."""
        receipt = Receipt()
        with trio.move_on_after(self.settings.record_timeout.seconds):
            try:
                await self.inbound.send(InboundEvent(event, source=source, receipt=receipt))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                log.warning("endpoint: the core takes no more events; %s not handed over", event.id)
                return "error: the gateway is not taking events now, try again later"
            if await receipt.wait():
                return None
            log.warning("endpoint: the core did not record %s", event.id)
            return "error: the gateway could not record the event, try again later"
        log.warning("endpoint: the core did not record %s in time", event.id)
        return "error: the gateway did not record the event in time, try again later"

    async def publish(self, event: Event) -> AddOutcome:
        """Store and fan out an event the gateway itself signed."""
        raw = encode_event(event).decode()
        outcome = await self.store.add(event, raw, own=True)
        if outcome in (AddOutcome.STORED, AddOutcome.NOT_STORED):
            self.fan_out(event, raw)
        self.counters.published += 1
        return outcome

    def fan_out(self, event: Event, raw: str) -> None:
        """Hand ``event`` to every live subscription that matches it; never waits."""
        for connection in list(self.connections):
            connection.deliver(event, raw)

    def statistics(self) -> dict[str, Any]:
        return {
            "connections": len(self.connections),
            "connections_closing": len(self.closing),
            "subscriptions": sum(len(c.subscriptions) for c in self.connections),
            "events_stored": self.store.count,
        }
