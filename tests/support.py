"""Running a real command for a test: start it, wait for a line it prints, stop it with a
signal, and keep everything it printed for the assertions."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

__all__ = ["REQUIRE_NODE_ENV", "RunningCommand", "need_node", "running"]


class RunningCommand:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output = b""

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    async def wait_for(self, marker: bytes) -> None:
        """Read output until ``marker`` appears; fail if the command exits first."""
        while marker not in self.output:
            chunk = await self.process.stdout.receive_some()
            assert chunk, self.text
            self.output += chunk

    async def stop(self, signum: int) -> int:
        """Signal the command, read the rest of its output, and return its exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signum)
        async for chunk in self.process.stdout:
            self.output += chunk
        return await self.process.wait()


@asynccontextmanager
async def running(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stop_signal: int = signal.SIGINT,
    stop_timeout: float = 30,
) -> AsyncIterator[RunningCommand]:
    """Start ``args`` (stdout and stderr merged, unbuffered); stop it with ``stop_signal``
    when the block ends, however it ends, allowing it ``stop_timeout`` seconds to exit."""
    process = await trio.lowlevel.open_process(
        list(args),
        cwd=cwd,
        env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    command = RunningCommand(process)
    try:
        yield command
    finally:
        with trio.fail_after(stop_timeout):
            await command.stop(stop_signal)


#: In CI a missing node or npm package is a failure, not a skipped test.
REQUIRE_NODE_ENV = "ARKRELAY_REQUIRE_NODE"


def need_node(project: Path, packages: Sequence[str]) -> None:
    """Skip the calling test unless node and ``packages`` of the npm ``project`` are
    installed; with ARKRELAY_REQUIRE_NODE=1, fail it instead."""
    reason = None
    if shutil.which("node") is None:
        reason = "node is not on PATH"
    else:
        for package in packages:
            if not (project / "node_modules" / package / "package.json").is_file():
                where = project.relative_to(Path(__file__).parent.parent)
                reason = f"{package} is not installed: run `npm ci --prefix {where}`"
                break
    if reason is None:
        return
    if os.environ.get(REQUIRE_NODE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_NODE_ENV}=1 requires the node tests)")
    pytest.skip(reason)
