"""The chain simulator as a real process on a free loopback port, in its own process
group, always stopped (the whole group) when the test ends."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

ARKRELAY = str(Path(sys.executable).parent / "arkrelay")
READY = re.compile(rb"chain simulator ready on (http://\S+)")


class ChainProcess:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output = b""
        self.url = ""

    async def wait_ready(self) -> None:
        while (found := READY.search(self.output)) is None:
            chunk = await self.process.stdout.receive_some()
            assert chunk, self.output.decode(errors="replace")
            self.output += chunk
        self.url = found.group(1).decode()

    async def stop(self) -> None:
        if self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGINT)
        with trio.move_on_after(10) as waited:
            await self.process.wait()
        if waited.cancelled_caught:
            os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()


async def start_chain(*args: str) -> ChainProcess:
    process = await trio.lowlevel.open_process(
        [ARKRELAY, "sim", "chain", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    chain = ChainProcess(process)
    try:
        with trio.fail_after(60):
            await chain.wait_ready()
    except BaseException:
        await chain.stop()
        raise
    return chain


@pytest.fixture
async def chain_process() -> AsyncIterator[ChainProcess]:
    chain = await start_chain("--fee-floor", "2")
    try:
        yield chain
    finally:
        await chain.stop()


@pytest.fixture
async def esplora(chain_process: ChainProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=chain_process.url, timeout=10) as client:
        yield client
