"""A gateway served inside the caller's trio run: `arkrelay demo` and the tests embed one
this way (``arkrelay run`` adds signal handling and the banner around the same steps)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import trio

from .config import Config
from .gateway import Gateway
from .identity import open_identity
from .plugins import PluginRegistry
from .store import create_engine_for, session_factory, upgrade

__all__ = ["serving"]


@contextlib.asynccontextmanager
async def serving(
    config: Config, registry: PluginRegistry, *, environ: Mapping[str, str] | None = None
) -> AsyncIterator[Gateway]:
    """Migrate the database, unlock the service key (``environ`` holds its passphrase,
    default ``os.environ``), start every task of the gateway, and yield it once it runs;
    leaving the block stops it."""
    upgrade(config.gateway.database)
    identity = open_identity(config.gateway.key_file, config.gateway.network, environ=environ)
    engine = create_engine_for(config.gateway.database)
    try:
        gateway = Gateway(config, registry, identity, session_factory(engine))
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)
            yield gateway
            nursery.cancel_scope.cancel()
    finally:
        engine.dispose()
