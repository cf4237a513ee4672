"""The gateway with its HTTP API, in the test's trio loop: the relay endpoint, the arkd and
lnd simulators, an admin key, and an httpx client on the API's real socket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from arkrelay_core.config import load_config_text
from arkrelay_core.gateway import Gateway
from arkrelay_core.plugins import load_plugins
from arkrelay_core.serving import serving
from plugins.nostr.tests.relay_process import free_port

ADMIN_KEY = "test-admin-key-that-is-long-enough"


@dataclass
class Api:
    gateway: Gateway
    client: httpx.AsyncClient
    url: str
    relay_url: str

    async def get(self, path: str, **kw) -> httpx.Response:
        return await self.client.get(path, **kw)

    async def admin(self, method: str, path: str, **kw) -> httpx.Response:
        headers = {"X-Admin-Key": ADMIN_KEY, **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)


def http_config(directory: Path, *, extra: str = "", admin_key: str | None = ADMIN_KEY) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    key = f'admin_key = "{admin_key}"\n' if admin_key else ""
    return f"""
[gateway]
network = "regtest"
data_dir = "{directory}"
{key}
[http]
listen = "127.0.0.1:{free_port()}"
page_size = 50

[transport.endpoint]
listen = "127.0.0.1:{free_port()}"

[backend.ark]
plugin = "arkd"

# The gateway's fees are outputs below dust: arkd's default min VTXO amount refuses them.
[backend.ark.simulator]
vtxo_min_amount = 1

[backend.lightning]
plugin = "lnd"

[outbox]
retry_initial = "1s"
retry_max = "3s"
{extra}
"""


@contextlib.asynccontextmanager
async def running_api(directory: Path, **kw) -> AsyncIterator[Api]:
    registry = load_plugins()
    config = load_config_text(
        http_config(directory, **kw),
        source=str(directory / "gw.toml"),
        settings_resolver=registry.settings_type,
    )
    async with serving(config, registry, environ={}) as gateway:
        assert gateway.http is not None
        url = gateway.http.url
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield Api(gateway, client, url, gateway.components.transports["endpoint"].url)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path / "gw") as running:
        yield running
