"""The endpoint's event store: one SQLite file, so answers to REQ survive a restart.

SQLite blocks, so every call runs in a worker thread, one at a time (a
``CapacityLimiter(1)``). Writes from all connections meet in one writer task that
stores whatever has queued up in one transaction: a commit costs far more than an
insert, so under load events are stored in batches instead of one commit each. The file
is the relay's cache, not the gateway's ledger: losing it loses no money or state.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import trio

from arkrelay_core.nostr import Event

from .filters import Filter
from .kinds import is_ephemeral
from .sqlite import AddOutcome, EventsFile, expiration

__all__ = ["MAX_BATCH", "AddOutcome", "EventStore", "StoreError", "expiration"]

log = logging.getLogger(__name__)

#: Events stored in one transaction at most; also the writer's queue length.
MAX_BATCH = 256


class StoreError(Exception):
    """The event file could not be opened, read or written."""


class _PendingAdd:
    __slots__ = ("done", "event", "own", "raw", "result")

    def __init__(self, event: Event, raw: str, own: bool) -> None:
        self.event = event
        self.raw = raw
        self.own = own
        self.done = trio.Event()
        self.result: AddOutcome | StoreError | None = None


class EventStore:
    """Async face of the store: :meth:`open` it, run :meth:`run_writer` in a nursery while
    it is used, then :meth:`aclose` it."""

    def __init__(self, file: EventsFile, limiter: trio.CapacityLimiter) -> None:
        self._file = file
        self._limiter = limiter
        self._adds, self._queued = trio.open_memory_channel[_PendingAdd](MAX_BATCH)

    @classmethod
    async def open(
        cls, path: Path, *, max_events: int, private_kinds: frozenset[int]
    ) -> EventStore:
        limiter = trio.CapacityLimiter(1)
        try:
            file = await trio.to_thread.run_sync(
                EventsFile, path, max_events, private_kinds, limiter=limiter
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        return cls(file, limiter)

    @property
    def count(self) -> int:
        return self._file.count

    async def add(self, event: Event, raw: str, *, own: bool = False) -> AddOutcome:
        """Store ``event`` (``raw`` is its JSON) unless a duplicate or superseded;
        ``own``: the gateway's own event, kept until it expires whatever the limit."""
        if is_ephemeral(event.kind):
            return AddOutcome.NOT_STORED
        pending = _PendingAdd(event, raw, own)
        try:
            await self._adds.send(pending)
        except trio.ClosedResourceError:
            raise StoreError("the event store is closed") from None
        await pending.done.wait()
        if isinstance(pending.result, AddOutcome):
            return pending.result
        raise pending.result or StoreError(f"event {event.id} was not stored")

    async def run_writer(self) -> None:
        """Store queued events in batches until cancelled; then refuse further adds."""
        batch: list[_PendingAdd] = []
        try:
            async for first in self._queued:
                batch = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(self._queued.receive_nowait())
                    except trio.WouldBlock:
                        break
                await self._write(batch)
                batch = []
        finally:
            # Whoever still waits (a publish from outside the transport) learns it failed.
            self._adds.close()
            while True:
                try:
                    batch.append(self._queued.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            for pending in batch:
                if not pending.done.is_set():
                    pending.result = StoreError("the event store closed before storing it")
                    pending.done.set()

    async def _write(self, batch: list[_PendingAdd]) -> None:
        items = [(pending.event, pending.raw, pending.own) for pending in batch]
        try:
            outcomes = await trio.to_thread.run_sync(
                self._file.add_many, items, limiter=self._limiter
            )
        except sqlite3.Error as exc:
            log.error("endpoint could not store %d events: %s", len(batch), exc)
            for pending in batch:
                pending.result = StoreError(f"cannot store event {pending.event.id}: {exc}")
                pending.done.set()
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            pending.result = outcome
            pending.done.set()

    async def query(
        self, filters: Sequence[Filter], *, readers: frozenset[str] | None
    ) -> list[tuple[str, str]]:
        """(id, JSON) of stored events matching any filter, newest first, each filter's
        limit held.

        ``readers``: ``None`` serves every kind; a set hides the private kinds unless their
        author or a ``p`` tag is in it.
        """
        try:
            return await trio.to_thread.run_sync(
                self._file.query, filters, readers, limiter=self._limiter
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot query events: {exc}") from exc

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._file.close, limiter=self._limiter)
