"""The world outside the gateway on the simulated Lightning network: its ``outside`` node
pays lift invoices and issues the invoices wallets land to."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import trio
from arkrelay_lnd.client import LndBackend
from arkrelay_lnd.sim.state import client_settings

from arkrelay_core.config import Duration

__all__ = ["node_client"]


@contextlib.asynccontextmanager
async def node_client(data_dir: Path, node: str = "outside") -> AsyncIterator[LndBackend]:
    """An lnd client (over gRPC, TLS and macaroon) of ``node`` of the simulated network a
    gateway with data directory ``data_dir`` runs."""
    backend = LndBackend(client_settings(data_dir, node, call_timeout=Duration(10)))
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        yield backend
        nursery.cancel_scope.cancel()
