"""Fixtures: lnd and tapd simulators over one network on loopback, and backends on them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import trio
from arkrelay_lnd.client import LndBackend
from arkrelay_lnd.settings import LndSettings
from arkrelay_lnd.sim import LndSimulator, SimNetwork

from arkrelay_core.config import Duration, HostPort, Secret
from arkrelay_tapd.client import TapdBackend
from arkrelay_tapd.settings import TapdSettings
from arkrelay_tapd.sim import TapdSimulator


@pytest.fixture
def sims() -> Iterator[tuple[LndSimulator, TapdSimulator]]:
    network = SimNetwork()
    lnd, tapd = LndSimulator(network), TapdSimulator(network)
    lnd.start_all()
    tapd.start_all()
    yield lnd, tapd
    tapd.stop_all()
    lnd.stop_all()


Connect = Callable[..., Awaitable[TapdBackend]]


@pytest.fixture
def connect(
    sims: tuple[LndSimulator, TapdSimulator], nursery: trio.Nursery, tmp_path: Path
) -> Connect:
    """``await connect(node="gateway", **settings)`` -> a served TapdBackend."""
    _, tapd = sims
    cert = tmp_path / "tapd.cert"
    cert.write_bytes(tapd.tls.cert_pem)

    async def make(node: str = "gateway", **overrides: object) -> TapdBackend:
        fields: dict[str, object] = {
            "target": HostPort.parse(tapd.target(node)),
            "tls_cert": cert,
            "macaroon": Secret(tapd.macaroon_hex(node)),
            "asset_channels": True,
            "call_timeout": Duration(5),
            "backoff_initial": Duration(0.05),
            "backoff_max": Duration(0.2),
            "pay_grace": Duration(1),
        }
        fields.update(overrides)
        backend = TapdBackend(TapdSettings(**fields))  # type: ignore[arg-type]
        await nursery.start(backend.serve)
        return backend

    return make


@pytest.fixture
async def outside_lnd(
    sims: tuple[LndSimulator, TapdSimulator], nursery: trio.Nursery, tmp_path: Path
) -> LndBackend:
    lnd, _ = sims
    cert = tmp_path / "lnd.cert"
    cert.write_bytes(lnd.tls.cert_pem)
    backend = LndBackend(
        LndSettings(
            target=HostPort.parse(lnd.target("outside")),
            tls_cert=cert,
            macaroon=Secret(lnd.macaroon_hex("outside")),
            pay_grace=Duration(1),
        )
    )
    await nursery.start(backend.serve)
    return backend
