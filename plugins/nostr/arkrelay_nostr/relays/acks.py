"""Matching a relay's ``OK`` answers to the publishes waiting for them."""

from __future__ import annotations

import dataclasses

import trio

__all__ = ["Ack", "AckWaiter", "AckWaiters"]


@dataclasses.dataclass(frozen=True)
class Ack:
    accepted: bool
    #: The relay's message, with its NIP-01 prefix (``duplicate:``, ``blocked:`` ...).
    message: str


@dataclasses.dataclass(eq=False)
class AckWaiter:
    event_id: str
    done: trio.Event = dataclasses.field(default_factory=trio.Event)
    #: None once done means no answer will come (the connection went away).
    ack: Ack | None = None


class AckWaiters:
    """Publishes in flight on one connection, oldest first."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[AckWaiter]] = {}

    def __len__(self) -> int:
        return sum(len(waiters) for waiters in self._waiting.values())

    def expect(self, event_id: str) -> AckWaiter:
        waiter = AckWaiter(event_id)
        self._waiting.setdefault(event_id, []).append(waiter)
        return waiter

    def discard(self, waiter: AckWaiter) -> None:
        waiters = self._waiting.get(waiter.event_id)
        if waiters is None or waiter not in waiters:
            return
        waiters.remove(waiter)
        if not waiters:
            del self._waiting[waiter.event_id]

    def resolve(self, event_id: str, ack: Ack) -> bool:
        """Hand ``ack`` to whoever waits for ``event_id``; False if nobody does.

        Some relays (nostr-relay 1.14) answer a refused event with an empty id. They
        answer one connection's messages in order, so such an answer belongs to the
        oldest publish still waiting here.
        """
        if not event_id and self._waiting:
            event_id = next(iter(self._waiting))
        waiters = self._waiting.pop(event_id, None)
        if not waiters:
            return False
        for waiter in waiters:
            waiter.ack = ack
            waiter.done.set()
        return True

    def abandon_all(self) -> None:
        """The connection is gone: wake every waiter with no answer."""
        waiting, self._waiting = self._waiting, {}
        for waiters in waiting.values():
            for waiter in waiters:
                waiter.done.set()
