"""A bounded set of recently delivered event ids (the pool's cross-relay dedup), each with
the core's receipt for the copy that was delivered."""

from __future__ import annotations

from collections import OrderedDict

from arkrelay_core.interfaces import Receipt

__all__ = ["RecentIds"]


class RecentIds:
    """Remembers the last ``capacity`` ids; the oldest is forgotten first.

    Only a first line: an id that fell out is caught by the core's persisted dedup.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._ids: OrderedDict[str, Receipt | None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def receipt(self, event_id: str) -> Receipt | None:
        """The receipt of the delivered copy (None: unknown, or delivered without one)."""
        return self._ids.get(event_id)

    def add(self, event_id: str, receipt: Receipt | None = None) -> None:
        self._ids[event_id] = receipt
        self._ids.move_to_end(event_id)
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
