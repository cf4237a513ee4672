"""Transports carry Nostr events between wallets and the gateway."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import msgspec
import trio

from ..nostr import Event

__all__ = ["InboundEvent", "PublishResult", "Receipt", "Transport"]


class Receipt:
    """The core's word on one inbound event: recorded durably, or not.

    "Recorded" means the event (id and body) is committed to the core's database, so a
    crash from then on loses nothing: a restarted gateway handles it from there. A
    transport that acknowledges events to their sender (the endpoint's ``OK``) waits for
    this before saying yes; one that reads from relays moves its resume point only past
    recorded events. The core settles every receipt it takes, exactly once.
    """

    __slots__ = ("_done", "_recorded")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._recorded = False

    def settle(self, recorded: bool) -> None:
        """Called by the core; later calls change nothing."""
        if not self._done.is_set():
            self._recorded = recorded
            self._done.set()

    @property
    def settled(self) -> bool:
        return self._done.is_set()

    @property
    def recorded(self) -> bool:
        """True once settled as recorded (a duplicate of a recorded event counts)."""
        return self._recorded

    async def wait(self) -> bool:
        """Wait until settled; True if recorded. The caller puts the deadline around it."""
        await self._done.wait()
        return self._recorded


class InboundEvent(msgspec.Struct, frozen=True):
    """An event a transport verified (id + BIP340) and hands to the core."""

    event: Event
    #: Where it came from, for logs and metrics: a relay URL or ``endpoint:<conn id>``.
    source: str
    #: Settled by the core once the event is recorded durably (or could not be). None: the
    #: transport does not need to know (the core records the event all the same).
    receipt: Receipt | None = None


class PublishResult(msgspec.Struct, frozen=True):
    """Per-relay outcome of one publish: the outbox retries until enough accepted."""

    accepted: tuple[str, ...] = ()
    #: relay -> the relay's reason, with its NIP-01 prefix (``blocked: ...``).
    rejected: Mapping[str, str] = msgspec.field(default_factory=dict)
    timed_out: tuple[str, ...] = ()

    @property
    def accepted_count(self) -> int:
        return len(self.accepted)


@runtime_checkable
class Transport(Protocol):
    """A way to receive and publish events (relay pool, the gateway's own relay endpoint).

    ``serve`` runs the transport and pushes every verified inbound event addressed to a
    listening pubkey into ``inbound``; it awaits ``inbound.send`` (backpressure), never
    drops silently. Duplicates across relays may still arrive; the core dedups by id.
    An event sent with a :class:`Receipt` is settled by the core once it is committed
    (duplicates too, as recorded): until then, a crash may lose it, so a transport must
    not acknowledge it to anyone, nor treat it as safely received.
    """

    features: frozenset[str]

    async def serve(
        self,
        inbound: trio.MemorySendChannel[InboundEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None: ...

    async def publish(self, event: Event) -> PublishResult:
        """Send to every connected relay and wait (with a deadline) for their OKs."""
        ...

    def statistics(self) -> Mapping[str, Any]: ...
