"""Fixtures: the simulated network on loopback ports, and backends connected to its nodes
over TLS with their macaroons."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import trio

from arkrelay_core.config import Duration, HostPort, Secret
from arkrelay_lnd.client import LndBackend
from arkrelay_lnd.settings import LndSettings
from arkrelay_lnd.sim import LndSimulator


@pytest.fixture
def sim() -> Iterator[LndSimulator]:
    simulator = LndSimulator()
    simulator.start_all()
    yield simulator
    simulator.stop_all()


Connect = Callable[..., Awaitable[LndBackend]]


@pytest.fixture
def connect(sim: LndSimulator, nursery: trio.Nursery, tmp_path: Path) -> Connect:
    """``await connect(node="gateway", **settings)`` -> a served LndBackend on that node."""
    cert = tmp_path / "tls.cert"
    cert.write_bytes(sim.tls.cert_pem)

    async def make(node: str = "gateway", **overrides: object) -> LndBackend:
        fields: dict[str, object] = {
            "target": HostPort.parse(sim.target(node)),
            "tls_cert": cert,
            "macaroon": Secret(sim.node(node).macaroon_hex),
            "call_timeout": Duration(5),
            "backoff_initial": Duration(0.05),
            "backoff_max": Duration(0.2),
            "pay_grace": Duration(1),
        }
        fields.update(overrides)
        backend = LndBackend(LndSettings(**fields))  # type: ignore[arg-type]
        await nursery.start(backend.serve)
        return backend

    return make


@pytest.fixture
async def gateway(connect: Connect) -> LndBackend:
    return await connect("gateway")


@pytest.fixture
async def outside(connect: Connect) -> LndBackend:
    return await connect("outside")
