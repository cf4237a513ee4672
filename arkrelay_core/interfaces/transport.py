"""Transports carry Nostr events between wallets and the gateway."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import msgspec
import trio

from ..nostr import Event

__all__ = ["InboundEvent", "PublishResult", "Transport"]


class InboundEvent(msgspec.Struct, frozen=True):
    """An event a transport verified (id + BIP340) and hands to the core."""

    event: Event
    #: Where it came from, for logs and metrics: a relay URL or ``endpoint:<conn id>``.
    source: str


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
