"""What one connection asked its relay for, and from when. Pure state: the connection sends."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from .backoff import Backoff
from .frames import close_frame, req_frame, subscription_filter

__all__ = ["Subscription"]


class Subscription:
    """The live subscription of one relay connection and the ``since`` cursor behind it.

    The cursor is the newest ``created_at`` seen from this relay. It survives reconnects,
    so a resubscription asks for everything since then, less ``window`` seconds for events
    that were back-dated or slow to propagate; what comes twice, the pool and the core's
    persisted dedup drop.
    """

    def __init__(
        self, kinds: Sequence[int], *, window: float, backoff: Backoff, now: float
    ) -> None:
        self._kinds = list(kinds)
        self._window = int(window)
        self._backoff = backoff
        self._ids = itertools.count(1)
        # Starts at "now": the first subscription also reaches back one window.
        self.cursor = int(now)
        self.current: str | None = None
        #: The ``since`` of the last REQ.
        self.since = 0
        self.keys: tuple[str, ...] = ()
        #: trio time at which to subscribe again after the relay closed us (inf: not due).
        self.resubscribe_at = math.inf
        self.auth_retried = False

    def renew(self, keys: tuple[str, ...]) -> tuple[str | None, str | None]:
        """Frames that replace the subscription: (REQ on ``keys``, CLOSE of the old one).

        The new one opens before the old one closes, so nothing falls in between. No keys
        means no REQ: an empty ``#p`` list is "any p" to some relays.
        """
        previous = self.current
        self.keys = keys
        self.resubscribe_at = math.inf
        self.current = None
        request = None
        if keys:
            self.current = f"arkrelay-{next(self._ids)}"
            self.since = since = max(0, self.cursor - self._window)
            request = req_frame(self.current, subscription_filter(self._kinds, keys, since))
        return request, None if previous is None else close_frame(previous)

    def seen(self, created_at: int, *, now: float) -> None:
        # A created_at in the future must not move the cursor past what we have seen.
        self.cursor = max(self.cursor, min(created_at, int(now)))

    def reached_eose(self, subscription: str) -> bool:
        if subscription != self.current:
            return False
        self.auth_retried = False
        self._backoff.reset()
        return True

    def closed_by_relay(self, subscription: str) -> bool:
        """The relay sent CLOSED; False when it is one we replaced ourselves."""
        if subscription != self.current:
            return False
        self.current = None
        return True

    def retry_later(self, now: float) -> float:
        """Schedule a resubscription after a backoff; returns the delay."""
        delay = self._backoff.next_delay()
        self.resubscribe_at = now + delay
        return delay

    def connection_lost(self) -> None:
        self.current = None
        self.keys = ()
        self.resubscribe_at = math.inf
        self.auth_retried = False
