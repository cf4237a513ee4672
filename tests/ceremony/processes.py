"""Gateway and simulator processes for fault tests: each in its own process group,
logging to a file (a long run must never block on a full pipe), killed for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from plugins.nostr.tests.relay_process import free_port

from .harness import gateway_config

ARKRELAY = Path(sys.executable).parent / "arkrelay"

__all__ = [
    "ARKRELAY",
    "Process",
    "arkd_simulator",
    "gateway_process",
    "lightning_section",
    "lnd_simulator",
    "write_config",
]


class Process:
    def __init__(self, args: list[str], log: Path, *, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, ready: str, timeout: float = 60) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts}\n".encode())
            self.popen = subprocess.Popen(
                self.args,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        marker = f"===== start {self.starts}\n"
        while True:
            text = self.log.read_text(errors="replace")
            if ready in text[text.rindex(marker) :]:
                return
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.args[:3]} exited at start:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.args[:3]} not ready in {timeout}s:\n{self.tail()}")
            time.sleep(0.1)

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Signal the whole process group and reap the process."""
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signum)
        self.popen.wait(timeout=30)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def arkd_simulator(directory: Path, boards: list[tuple[str, int]]) -> tuple[Process, int]:
    port = free_port()
    # A free REST port: the default (7071) would collide with any other simulator running.
    # The gateway's fees are outputs below dust: allowed only with a lower min VTXO amount
    # than arkd's default (the dust limit), as in arkd's regtest setups.
    args = [str(ARKRELAY), "sim", "arkd", "--port", str(port), "--rest-port", "0"]
    args += ["--vtxo-min-amount", "1"]
    for owner, amount in boards:
        args += ["--board", f"{owner}:{amount}"]
    return Process(args, directory / "arkd-sim.log"), port


def write_config(
    directory: Path,
    *,
    relay_url: str,
    arkd_port: int,
    database: str,
    instance: str,
    extra: str = "",
    lightning: str = "",
) -> Path:
    path = directory / "gw.toml"
    ceremony = f"""
[ceremony]
instance = "{instance}"
lease_ttl = "6s"
max_open_sessions = 64
requests_per_minute = 1000
{extra}
{lightning}
"""
    path.write_text(
        gateway_config(
            directory,
            relay_url,
            database=database,
            extra=ceremony,
            key_file=directory.parent / "gateway.key",
            ark_target=f"127.0.0.1:{arkd_port}",
            lightning=False,
        )
    )
    return path


def gateway_process(config: Path) -> Process:
    env = {"ARKRELAY_KEY_PASSPHRASE": "fault-test-passphrase"}
    return Process(
        [str(ARKRELAY), "run", "--config", str(config)], config.parent / "gateway.log", env=env
    )


def lnd_simulator(directory: Path) -> Process:
    directory.mkdir(parents=True, exist_ok=True)
    args = [str(ARKRELAY), "sim", "ln", "serve", "--data-dir", str(directory)]
    return Process(args, directory / "ln-sim.log")


def lightning_section(sim_dir: Path, node: str = "gateway") -> str:
    """``[backend.lightning]`` for a node of a running `arkrelay sim ln serve`."""
    from arkrelay_lnd.sim.state import CERT_FILE, read_state

    entry = read_state(sim_dir).nodes[node]
    return (
        f'[backend.lightning]\nplugin = "lnd"\ntarget = "{entry.target}"\n'
        f'tls_cert = "{sim_dir / CERT_FILE}"\nmacaroon = "{entry.macaroon}"\n'
    )
