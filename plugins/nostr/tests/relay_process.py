"""A real `nostr-relay` (PyPI) process on a loopback port, for tests and benchmarks.

It runs from its own environment through `uvx`, so its asyncio stack never shares a
process with the gateway, in its own process group so that stopping it stops everything
it started. Stopping and starting again reuses the port and the database: that is a relay
that went away and came back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

NOSTR_RELAY_SPEC = "nostr-relay==1.14"
STARTUP_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _uvx() -> list[str]:
    uvx = shutil.which("uvx")
    if uvx is not None:
        return [uvx]
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is needed to run the nostr-relay test relay")
    return [uv, "tool", "run"]


class NostrRelay:
    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        auth_writers: tuple[str, ...] | None = None,
    ) -> None:
        """``auth_writers``: if given, NIP-42 AUTH is on and only these pubkeys may publish."""
        self.directory = directory
        self.port = port or free_port()
        self.auth_writers = auth_writers
        self.url = f"ws://127.0.0.1:{self.port}"
        self.config = directory / "nostr-relay.yaml"
        self._process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self._write_config()

    def _write_config(self) -> None:
        auth = self.auth_writers is not None
        self.config.write_text(
            f"""\
DEBUG: false
relay_name: arkrelay test relay
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{self.directory / "events.sqlite3"}
  validators:
    - nostr_relay.validators.is_signed
gunicorn:
  bind: 127.0.0.1:{self.port}
  workers: 1
  loglevel: warning
authentication:
  enabled: {"true" if auth else "false"}
  relay_urls:
    - {self.url}
  actions:
    save: {"w" if auth else "a"}
    query: a
message_timeout: 1800
subscription_limit: 64
logging:
  version: 1
  root:
    level: WARNING
"""
        )

    def _command(self, *args: str) -> list[str]:
        return [*_uvx(), "--from", NOSTR_RELAY_SPEC, "nostr-relay", "-c", str(self.config), *args]

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("relay already running")
        if self.auth_writers:
            # Roles live in the relay's database, which `serve` would only create later.
            subprocess.run(
                self._command("alembic", "upgrade", "head"),
                check=True,
                capture_output=True,
                timeout=STARTUP_TIMEOUT,
            )
            for pubkey in self.auth_writers:
                subprocess.run(
                    self._command("role", "set", "-p", pubkey, "-r", "w"),
                    check=True,
                    capture_output=True,
                    timeout=STARTUP_TIMEOUT,
                )
        log = open(self.directory / "relay.log", "ab")  # noqa: SIM115 - closed with the process
        self._process = subprocess.Popen(
            self._command("serve", "--use-uvicorn"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"nostr-relay exited: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nostr-relay did not listen on {self.port}: {self.log_tail()}")

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Stop the whole process group (SIGKILL by default: the relay just vanishes)."""
        process, self._process = self._process, None
        if process is None:
            return
        # The group may already be gone (the relay crashed): nothing left to stop then.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        path = self.directory / "relay.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
