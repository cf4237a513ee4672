"""Token buckets for the per-connection and per-pubkey event rates."""

from __future__ import annotations

from collections import OrderedDict

import trio

__all__ = ["KeyedBuckets", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst`` (at least one event's worth)."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, rate if burst is None else burst)
        self._tokens = self.burst
        self._stamp = trio.current_time()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_take(self) -> bool:
        """Take one token if there is one; never waits."""
        self._refill(trio.current_time())
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def is_full(self) -> bool:
        self._refill(trio.current_time())
        return self._tokens >= self.burst


class KeyedBuckets:
    """One bucket per key (a pubkey), at most ``max_keys`` of them.

    A full bucket is the same as a fresh one, so forgetting it loses nothing. When the
    table is full, full buckets go first, then the least recently used ones down to 90 %
    (so the scan is paid once per tenth of the table, not once per new key); a forgotten
    key that was still draining starts again full: the bound on memory wins over precision.
    """

    def __init__(self, rate: float, *, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def try_take(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room()
            bucket = self._buckets[key] = TokenBucket(self.rate)
        else:
            self._buckets.move_to_end(key)
        return bucket.try_take()

    def _make_room(self) -> None:
        if len(self._buckets) < self.max_keys:
            return
        for key in [k for k, b in self._buckets.items() if b.is_full()]:
            del self._buckets[key]
        keep = self.max_keys * 9 // 10
        while len(self._buckets) > keep:
            self._buckets.popitem(last=False)
