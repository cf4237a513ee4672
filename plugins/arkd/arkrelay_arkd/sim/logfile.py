"""An append-only file of JSON records, one a line, for the simulator's durable state.

The first line is a whole snapshot; each later line is one change, appended and fsynced
before the change is acknowledged, so a change costs what it writes rather than what the
state holds. ``rewrite`` replaces the file by a single snapshot line (atomically: a crash
leaves the old file or the new one), which is how a log that grew long is compacted.

A process killed mid-append leaves a last line without its newline: that change was
never acknowledged, so readers drop it. The first line is never torn (only ``rewrite``
writes it), and a state file of the format before this one (a lone snapshot with no
newline) reads as a log with no changes.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["AppendLog", "split_records"]


def split_records(data: bytes) -> tuple[bytes, list[bytes]]:
    """The snapshot line and the complete change lines of a log's bytes."""
    first, newline, rest = data.partition(b"\n")
    if not newline:
        return first, []
    lines = rest.split(b"\n")
    # The last piece is b"" after a complete final line, else a torn (unacknowledged) one.
    return first, [line for line in lines[:-1] if line]


class AppendLog:
    """Appends records to ``path`` durably; counts bytes to say when to compact."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.snapshot_bytes = 0
        self.appended_bytes = 0

    def rewrite(self, snapshot: bytes) -> None:
        """Replace the whole log by ``snapshot`` (one line), durably and atomically."""
        scratch = self.path.with_name(self.path.name + ".tmp")
        with open(scratch, "wb") as f:
            f.write(snapshot + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(scratch, self.path)
        _fsync_directory(self.path.parent)
        self.snapshot_bytes = len(snapshot) + 1
        self.appended_bytes = 0

    def append(self, record: bytes) -> None:
        """Add one record; durable when this returns."""
        if b"\n" in record:
            raise ValueError("a log record must be a single line")
        with open(self.path, "ab") as f:
            f.write(record + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self.appended_bytes += len(record) + 1

    def outgrown(self, factor: int, floor: int) -> bool:
        """True once the changes appended exceed ``factor`` times the snapshot (and ``floor``
        bytes): compacting then costs a bounded multiple of what was appended."""
        return self.appended_bytes > max(floor, factor * self.snapshot_bytes)


def _fsync_directory(path: Path) -> None:
    # The rename is durable only once the directory entry is on disk too.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
