"""Where a relay's subscription resumes after a restart: never past an event the core has
not recorded durably.

The in-memory cursor (:class:`.subscription.Subscription`) is enough while the process
lives: whatever a reader took is on its way to the core. A SIGKILL loses that way, so
the point kept on disk only moves past events whose :class:`Receipt` says "recorded".
Relays answer a REQ with their stored events newest first, so nothing taken before the
EOSE counts until all of it is recorded; live events after it come in arrival order and
count one by one, oldest first.
"""

from __future__ import annotations

import collections
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from arkrelay_core.interfaces import Receipt

__all__ = ["MAX_PENDING", "ResumeFile", "ResumePoint"]

log = logging.getLogger(__name__)

#: Events tracked per relay while one before them is not recorded. Past it the point stops
#: for the life of the process (safe: a restart asks again from there) instead of memory
#: growing behind an event that will never be recorded.
MAX_PENDING = 10_000


class ResumePoint:
    """One relay's ``created_at`` up to which everything it sent us is recorded."""

    def __init__(self, recorded: int) -> None:
        self.recorded = recorded
        # (created_at, receipt, taken before the EOSE of its subscription), arrival order.
        self._pending: collections.deque[tuple[int, Receipt, bool]] = collections.deque()
        self._catching_up = False
        #: The newest created_at recorded among a catch-up's events, applied once the whole
        #: catch-up is recorded.
        self._held: int | None = None
        self._stopped = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def subscribed(self, since: int) -> None:
        """A REQ from ``since`` went out: its stored events come newest first, until the
        EOSE. An event the core did not record that it asks for again (the transport was
        restarted in this process) no longer holds the point: its new copy does."""
        self._catching_up = True
        kept = [
            entry
            for entry in self._pending
            if not (entry[1].settled and not entry[1].recorded and entry[0] >= since)
        ]
        if len(kept) < len(self._pending):
            # The new copy lands behind those still queued: none of them may move the
            # point before the whole catch-up, that copy included, is recorded.
            kept = [(created_at, receipt, True) for created_at, receipt, _ in kept]
        self._pending = collections.deque(kept)

    def caught_up(self) -> None:
        """The EOSE of the current subscription arrived."""
        self._catching_up = False

    def taken(self, created_at: int, receipt: Receipt, *, now: float) -> None:
        if self._stopped:
            return
        if len(self._pending) >= MAX_PENDING:
            log.warning("relays: resume point stopped at %d until a restart", self.recorded)
            self._stopped = True
            self._pending.clear()
            self._held = None
            return
        # A created_at in the future must not carry the point past what exists.
        self._pending.append((min(created_at, int(now)), receipt, self._catching_up))

    def advance(self) -> bool:
        """Move past every recorded event at the head of the queue; True if it moved."""
        before = self.recorded
        while self._pending and self._pending[0][1].recorded:
            created_at, _, in_catch_up = self._pending.popleft()
            if in_catch_up:
                self._held = created_at if self._held is None else max(self._held, created_at)
            else:
                self._move_to(created_at)
        head_in_catch_up = bool(self._pending) and self._pending[0][2]
        if self._held is not None and not head_in_catch_up and not self._catching_up:
            self._move_to(self._held)
            self._held = None
        return self.recorded != before

    def _move_to(self, created_at: int) -> None:
        self.recorded = max(self.recorded, created_at)


class ResumeFile:
    """Resume points of every relay of one pool, as JSON in the gateway's data dir.

    Written whole to a temporary file, flushed to disk, then renamed over the old one: a
    crash leaves the old points or the new ones, and either is safe (an older point only
    means asking again for events the core drops as duplicates).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("relays: cannot read %s (%s); resuming from now", self.path, exc)
            return {}
        if not isinstance(data, dict):
            log.warning("relays: %s holds no resume points; resuming from now", self.path)
            return {}
        return {
            url: value
            for url, value in data.items()
            if isinstance(url, str) and isinstance(value, int) and not isinstance(value, bool)
        }

    def save(self, points: Mapping[str, int]) -> None:
        """Blocking (a file write and an fsync): run it in a worker thread."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w") as out:
            json.dump(dict(points), out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
