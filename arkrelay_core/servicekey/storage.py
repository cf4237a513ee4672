"""Writing the key file safely: atomic, mode 0600, never clobbering, one writer at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec

from .model import KeyFile, KeyFileError

__all__ = ["exclusive", "exists_error", "write"]


def write(path: Path, key_file: KeyFile, *, replace: bool) -> None:
    """Write atomically with mode 0600: temp file, fsync, then rename (or link, to not clobber)."""
    data = msgspec.json.format(msgspec.json.encode(key_file), indent=2) + b"\n"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            tmp.replace(path)
        else:
            # link() fails if the target exists, unlike rename(): no window to clobber a key.
            os.link(tmp, path)
            tmp.unlink()
        fsync_dir(path.parent)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise exists_error(path) from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock beside ``path`` so two rotations never read the same old file."""
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot lock {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def exists_error(path: Path) -> KeyFileError:
    return KeyFileError(
        f"{path} already exists; refusing to overwrite a key file "
        "(use 'arkrelay keys rotate' to replace the key)"
    )


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
