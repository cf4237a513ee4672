"""Jittered exponential backoff for reconnects and resubscriptions."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each drawn from ``[d/2, d]``.

    The jitter keeps a gateway's connections (and several gateways) from retrying a relay
    that just came back all at the same instant.
    """

    def __init__(self, initial: float, maximum: float, *, rng: random.Random | None = None) -> None:
        self._initial = initial
        self._maximum = max(initial, maximum)
        self._rng = rng or random.Random()
        self._failures = 0

    @property
    def failures(self) -> int:
        """Delays handed out since the last :meth:`reset`."""
        return self._failures

    def next_delay(self) -> float:
        # Exponent bounded so a relay that is down for days never overflows a float.
        ceiling = min(self._maximum, self._initial * 2 ** min(self._failures, 62))
        self._failures += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._failures = 0
