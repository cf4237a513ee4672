"""Step and session deadlines: one task sleeps until the earliest, no polling.

Entries are hints: when one falls due the engine reads the session again and decides
(the database may hold a later deadline by then, set by a response another instance
took). Re-adding a session replaces nothing; stale entries just find nothing to do.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Awaitable, Callable

import trio

__all__ = ["Deadlines"]


class Deadlines:
    def __init__(self, due: Callable[[str], Awaitable[None]]) -> None:
        self._due = due
        self._heap: list[tuple[float, str]] = []
        self._wake = trio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, session_id: str, at: float) -> None:
        """Look at ``session_id`` again at unix time ``at``."""
        heapq.heappush(self._heap, (at, session_id))
        self._wake.set()

    async def serve(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                self._wake = trio.Event()
                now = time.time()
                while self._heap and self._heap[0][0] <= now:
                    _, session_id = heapq.heappop(self._heap)
                    nursery.start_soon(self._due, session_id)
                wait = self._heap[0][0] - now if self._heap else float("inf")
                with trio.move_on_after(wait):
                    await self._wake.wait()
