"""The blocking half of the event store: SQLite, called from one worker thread at a time."""

from __future__ import annotations

import enum
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from arkrelay_core.nostr import Event, first_tag_value

from .filters import Filter
from .kinds import replacement_slot

__all__ = ["SCHEMA_VERSION", "AddOutcome", "EventsFile", "SchemaMismatch", "expiration"]

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    pubkey TEXT NOT NULL,
    kind INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    slot TEXT UNIQUE,
    expires_at INTEGER,
    raw TEXT NOT NULL,
    own INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (created_at, id);
CREATE INDEX IF NOT EXISTS events_by_author ON events (pubkey, created_at);
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, created_at);
CREATE INDEX IF NOT EXISTS events_by_expiry ON events (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS tags (
    seq INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_by_value ON tags (name, value, seq);
CREATE INDEX IF NOT EXISTS tags_by_event ON tags (seq);
CREATE INDEX IF NOT EXISTS events_from_clients ON events (seq) WHERE own = 0;
"""
#: Version 1 had no ``own`` column: every event in it came from a client or the gateway,
#: unknown which, so all count as clients' (the gateway republishes what it needs).
_FROM_V1 = "ALTER TABLE events ADD COLUMN own INTEGER NOT NULL DEFAULT 0"
_NEVER = 2**53 - 1
_INSERT = (
    "INSERT INTO events (id, pubkey, kind, created_at, slot, expires_at, raw, own)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_NEW = _INSERT + " ON CONFLICT (id) DO NOTHING"
_INSERT_TAG = "INSERT INTO tags (seq, name, value) VALUES (?, ?, ?)"
_HAS_ID = "SELECT 1 FROM events WHERE id = ?"
#: Adds between two sweeps of expired events (queries hide them meanwhile).
_SWEEP_EVERY = 1000


class SchemaMismatch(sqlite3.DatabaseError):
    """The file was written by another version of this store."""


class AddOutcome(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    #: A replaceable or addressable event older than the version already stored.
    SUPERSEDED = "superseded"
    #: Ephemeral kinds are relayed, never stored.
    NOT_STORED = "not stored"


def expiration(event: Event) -> int | None:
    """The NIP-40 ``expiration`` time, if the event has a well-formed one."""
    value = first_tag_value(event, "expiration")
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    # Beyond 2**53 is "never" in practice, and SQLite integers stop at 2**63.
    return int(value) if len(value) <= 15 else _NEVER


def _indexed(name: str) -> bool:
    """NIP-01 filters can only name single-letter tags, so only those are indexed."""
    return len(name) == 1 and name.isascii() and name.isalpha()


class EventsFile:
    """One SQLite file of events; not thread-safe: the caller serialises every call."""

    def __init__(self, path: Path, max_events: int, private_kinds: frozenset[int]) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created owner-only before SQLite opens it (its -wal and -shm files copy the mode):
        # it holds the private kinds (signing challenges, encrypted messages).
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.max_events = max_events
        self.private_kinds = tuple(sorted(private_kinds))
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("PRAGMA foreign_keys = ON")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, 1, SCHEMA_VERSION):
            self.db.close()
            raise SchemaMismatch(f"schema version {version}, expected {SCHEMA_VERSION}")
        if version == 1:
            self.db.execute(_FROM_V1)
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.adds = 0
        self.count = self.db.execute("SELECT count(*) FROM events").fetchone()[0]
        self.sweep()
        self.prune()

    def add_many(self, items: Sequence[tuple[Event, str, bool]]) -> list[AddOutcome]:
        """Store (event, JSON, own) in one transaction: one commit for the whole batch.

        ``own``: the gateway signed and published it, so pruning never takes it.
        """
        outcomes: list[AddOutcome] = []
        change = 0
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for event, raw, own in items:
                outcome, delta = self._add(event, raw, own)
                outcomes.append(outcome)
                change += delta
        self.count += change
        self.adds += len(items)
        if self.adds >= _SWEEP_EVERY:
            self.adds = 0
            self.sweep()
        self.prune()
        return outcomes

    def _add(self, event: Event, raw: str, own: bool) -> tuple[AddOutcome, int]:
        slot = replacement_slot(event)
        if slot is None:
            # Most events: the id's unique index tells a duplicate, no lookup first.
            cursor = self.db.execute(_INSERT_NEW, self._row(event, raw, own, None))
            if cursor.rowcount == 0:
                return self._duplicate(event, own)
            self._tag(cursor.lastrowid, event)
            return AddOutcome.STORED, 1
        if self.db.execute(_HAS_ID, (event.id,)).fetchone():
            return self._duplicate(event, own)
        change = 1
        row = self.db.execute(
            "SELECT seq, created_at, id FROM events WHERE slot = ?", (slot,)
        ).fetchone()
        if row is not None:
            old_seq, old_at, old_id = row
            # NIP-01: the newest wins; on a tie, the lowest id.
            if old_at > event.created_at or (old_at == event.created_at and old_id < event.id):
                return AddOutcome.SUPERSEDED, 0
            self.db.execute("DELETE FROM events WHERE seq = ?", (old_seq,))
            change = 0
        seq = self.db.execute(_INSERT, self._row(event, raw, own, slot)).lastrowid
        self._tag(seq, event)
        return AddOutcome.STORED, change

    def _duplicate(self, event: Event, own: bool) -> tuple[AddOutcome, int]:
        if own:  # a client relayed the gateway's event before the gateway stored it
            self.db.execute("UPDATE events SET own = 1 WHERE id = ?", (event.id,))
        return AddOutcome.DUPLICATE, 0

    @staticmethod
    def _row(event: Event, raw: str, own: bool, slot: str | None) -> tuple[object, ...]:
        expires = expiration(event)
        return (event.id, event.pubkey, event.kind, event.created_at, slot, expires, raw, own)

    def _tag(self, seq: int | None, event: Event) -> None:
        tags = [(seq, t[0], t[1]) for t in event.tags if len(t) >= 2 and _indexed(t[0])]
        if tags:
            self.db.executemany(_INSERT_TAG, tags)

    def sweep(self) -> None:
        """Delete expired events (queries already hide them)."""
        with self.db:
            gone = self.db.execute(
                "DELETE FROM events WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (int(time.time()),),
            ).rowcount
        self.count -= gone

    def prune(self) -> None:
        """Delete the clients' events that arrived first, beyond ``max_events``.

        By arrival, not ``created_at``: that is the client's to choose, and a future-dated
        flood would otherwise push out everything older. The gateway's own events are
        never pruned; they leave when their NIP-40 expiration passes.
        """
        excess = self.count - self.max_events
        if excess <= 0:
            return
        with self.db:
            gone = self.db.execute(
                "DELETE FROM events WHERE seq IN"
                " (SELECT seq FROM events WHERE own = 0 ORDER BY seq LIMIT ?)",
                (excess,),
            ).rowcount
        self.count -= gone

    def query(
        self, filters: Sequence[Filter], readers: frozenset[str] | None
    ) -> list[tuple[str, str]]:
        found: dict[str, tuple[int, str]] = {}
        for flt in filters:
            if flt.limit == 0 or not flt.can_match():
                continue
            sql, params = self._select(flt, readers)
            for created_at, event_id, raw in self.db.execute(sql, params):
                found[event_id] = (created_at, raw)
        ordered = sorted(found.items(), key=lambda item: (-item[1][0], item[0]))
        return [(event_id, raw) for event_id, (_, raw) in ordered]

    def _select(self, flt: Filter, readers: frozenset[str] | None) -> tuple[str, list[object]]:
        where = ["(expires_at IS NULL OR expires_at > ?)"]
        params: list[object] = [int(time.time())]

        def member(column: str, values: Iterable[object]) -> None:
            values = list(values)
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)

        if flt.ids is not None:
            member("id", flt.ids)
        if flt.authors is not None:
            member("pubkey", flt.authors)
        if flt.kinds is not None:
            member("kind", flt.kinds)
        if flt.since is not None:
            where.append("created_at >= ?")
            params.append(flt.since)
        if flt.until is not None:
            where.append("created_at <= ?")
            params.append(flt.until)
        for name, values in flt.tags:
            marks = ", ".join("?" * len(values))
            where.append(f"seq IN (SELECT seq FROM tags WHERE name = ? AND value IN ({marks}))")
            params.extend([name, *values])
        if readers is not None:
            where.append(self._visible(readers, params))
        sql = (
            f"SELECT created_at, id, raw FROM events WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, id ASC LIMIT ?"
        )
        return sql, [*params, flt.limit]

    def _visible(self, readers: frozenset[str], params: list[object]) -> str:
        kinds = ", ".join("?" * len(self.private_kinds))
        params.extend(self.private_kinds)
        if not readers:
            return f"kind NOT IN ({kinds})"
        marks = ", ".join("?" * len(readers))
        params.extend([*readers, *readers])
        return (
            f"(kind NOT IN ({kinds}) OR pubkey IN ({marks}) OR seq IN"
            f" (SELECT seq FROM tags WHERE name = 'p' AND value IN ({marks})))"
        )

    def close(self) -> None:
        self.db.close()
