"""Driving @arkade-os/sdk wallets (scenario.mjs) from a trio test: one node process, one
JSON request a line in, one answer a line out."""

# Each step takes its own `timeout` (ASYNC109 prefers a caller's cancel scope): running out
# must fail naming the step that hung, as every wait of the reference wallet does.
# ruff: noqa: ASYNC109

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import trio

from .judge import SDK_DIR

__all__ = ["SdkFailed", "SdkWallets"]

SCENARIO = SDK_DIR / "scenario.mjs"
#: An answer line is at most a few kB; a longer one means something is wrong.
MAX_LINE = 1 << 20


class SdkFailed(AssertionError):
    """The SDK refused or failed a step (its error text, stack included)."""


class SdkWallets:
    """``async with SdkWallets(ark_url, esplora_url, log) as sdk: await sdk.call(...)``."""

    def __init__(self, ark_url: str, esplora_url: str, log: Path) -> None:
        self.args = ["node", str(SCENARIO), "--ark", ark_url, "--esplora", esplora_url]
        self.log = log
        self._process: trio.Process | None = None
        self._buffer = b""
        self._next_id = 0

    async def __aenter__(self) -> SdkWallets:
        with self.log.open("ab") as err:
            self._process = await trio.lowlevel.open_process(
                self.args,
                cwd=SDK_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        try:
            if process.returncode is None and exc[0] is None:
                with trio.move_on_after(20):
                    await self.call("close")
                    await process.wait()
        finally:
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                with trio.CancelScope(shield=True):
                    await process.wait()

    async def call(self, op: str, *, timeout: float = 60, **fields: Any) -> Any:
        """Run one step; its result, or SdkFailed with the SDK's error."""
        assert self._process is not None and self._process.stdin is not None
        self._next_id += 1
        request = {"id": self._next_id, "op": op, **fields}
        with trio.fail_after(timeout):
            await self._process.stdin.send_all(json.dumps(request).encode() + b"\n")
            answer = json.loads(await self._line())
        assert answer["id"] == self._next_id, answer
        if not answer["ok"]:
            raise SdkFailed(f"@arkade-os/sdk {op} {fields}: {answer['error']}")
        return answer["result"]

    async def _line(self) -> bytes:
        assert self._process is not None and self._process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self._process.stdout.receive_some()
            if not chunk:
                raise SdkFailed(f"scenario.mjs exited; its log:\n{self._tail()}")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE:
                raise SdkFailed("scenario.mjs answered with an overlong line")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
