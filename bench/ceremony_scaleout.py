"""Scale-out for ``bench/ceremony.py --gateways N``: N gateway processes (``arkrelay run``)
on one PostgreSQL database, each its own ceremony instance, and the relay endpoint alone
in a process of its own (``ceremony_endpoint.py``) that the gateways reach as an external
relay through the ``relays`` transport and the wallets publish to."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import trio
from ceremony_measure import Lines
from ceremony_setup import config_text

from arkrelay_core.plugins import PluginRegistry
from arkrelay_core.servicekey import PASSPHRASE_ENV, create_key_file
from arkrelay_core.store import upgrade

HERE = Path(__file__).resolve().parent
ENDPOINT_SCRIPT = HERE / "ceremony_endpoint.py"
ARKRELAY = Path(sys.executable).parent / "arkrelay"
#: Guards a throwaway key in a throwaway directory.
PASSPHRASE = "bench-passphrase-not-secret"
START_TIMEOUT = 120.0


class Fleet(msgspec.Struct):
    """The processes serving the wallets: where they connect and whom they address."""

    url: str
    gateway_pubkey: str
    #: Process name -> pid, the gateways first ("gw-1", ...), then "endpoint".
    processes: dict[str, int]


@contextlib.asynccontextmanager
async def gateway_fleet(
    registry: PluginRegistry, data_dir: Path, count: int, database: str, ark_target: str
) -> AsyncIterator[Fleet]:
    # One schema upgrade before any gateway starts (each would run it on start).
    await trio.to_thread.run_sync(upgrade, database)
    key = create_key_file(data_dir / "gateway.key", PASSPHRASE)
    env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE, "PYTHONUNBUFFERED": "1"}
    async with trio.open_nursery() as nursery:
        started: list[trio.Process] = []
        try:
            (data_dir / "endpoint").mkdir()
            endpoint, url = await _endpoint(nursery, data_dir / "endpoint")
            started.append(endpoint)
            pids: dict[str, int] = {}
            for i in range(1, count + 1):
                name = f"gw-{i}"
                directory = data_dir / name
                config = _write_config(registry, directory, database, url, ark_target, name)
                command = [str(ARKRELAY), "run", "--config", str(config)]
                process = await _started(nursery, command, directory / "gateway.log", env)
                started.append(process)
                await _ready(nursery, process, "gateway running")
                pids[name] = process.pid
            pids["endpoint"] = endpoint.pid
            yield Fleet(url=url, gateway_pubkey=key.pubkey, processes=pids)
        finally:
            for process in reversed(started):
                process.terminate()


def _write_config(
    registry: PluginRegistry,
    directory: Path,
    database: str,
    url: str,
    ark_target: str,
    name: str,
) -> Path:
    directory.mkdir()
    config = directory / "gw.toml"
    config.write_text(
        config_text(
            registry,
            directory,
            database=database,
            relay=url,
            ark_target=ark_target,
            key_file=directory.parent / "gateway.key",
            instance=name,
        )
    )
    return config


async def _started(
    nursery: trio.Nursery, command: list[str], log_file: Path, env: dict[str, str] | None = None
) -> trio.Process:
    with log_file.open("ab") as log:
        return await nursery.start(
            functools.partial(
                trio.run_process,
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                check=False,
            )
        )


async def _ready(nursery: trio.Nursery, process: trio.Process, marker: str) -> str:
    """The first line of ``process`` containing ``marker``; the rest is drained."""
    lines = Lines(process.stdout)
    with trio.fail_after(START_TIMEOUT):
        while marker not in (line := await lines.next()):
            pass
    nursery.start_soon(lines.drain)
    return line


async def _endpoint(nursery: trio.Nursery, data_dir: Path) -> tuple[trio.Process, str]:
    command = [sys.executable, str(ENDPOINT_SCRIPT), str(data_dir)]
    process = await _started(nursery, command, data_dir / "endpoint.log")
    line = await _ready(nursery, process, '"url"')
    return process, json.loads(line)["url"]
