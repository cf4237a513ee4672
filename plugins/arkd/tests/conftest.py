"""Fixtures: the arkd simulator on a loopback port, and backends connected to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest
import trio

from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.settings import ArkdSettings
from arkrelay_arkd.sim import ArkdSimulator
from arkrelay_core.config import Duration, HostPort
from arkrelay_core.nostr import bip340


class Key:
    def __init__(self) -> None:
        self.secret = bip340.generate_secret_key()
        self.pub = bip340.xonly_public_key(self.secret).hex()

    def sign(self, sighash_hex: str) -> str:
        return bip340.schnorr_sign(self.secret, bytes.fromhex(sighash_hex)).hex()


@pytest.fixture
def sim() -> Iterator[ArkdSimulator]:
    simulator = ArkdSimulator()
    simulator.start(0)
    yield simulator
    simulator.stop()


Connect = Callable[..., Awaitable[ArkdBackend]]


@pytest.fixture
def connect(sim: ArkdSimulator, nursery: trio.Nursery) -> Connect:
    """``await connect(**settings)`` -> a served ArkdBackend talking to ``sim`` over gRPC."""

    async def make(**overrides: object) -> ArkdBackend:
        assert sim.port is not None
        fields: dict[str, object] = {
            "target": HostPort("127.0.0.1", sim.port),
            "call_timeout": Duration(5),
            "backoff_initial": Duration(0.05),
            "backoff_max": Duration(0.2),
        }
        fields.update(overrides)
        backend = ArkdBackend(ArkdSettings(**fields))  # type: ignore[arg-type]
        await nursery.start(backend.serve)
        return backend

    return make


@pytest.fixture
async def backend(connect: Connect) -> ArkdBackend:
    return await connect()
