"""Backends for the contract suites: ``pytest contract-tests [--backend arkd|lnd|tapd]``.

Without ``--backend`` every suite runs against its role's reference plugin (ark: arkd,
lightning: lnd, assets: tapd). With it, the suites of that backend's role run and the
others skip. The lnd and tapd makers live in lnd_backend.py and tapd_backend.py (their variables
are listed there and in the plugins' READMEs). The arkd maker uses the in-process
simulator, or a real arkd when ``ARKRELAY_ARKD_TARGET`` is set (see plugins/arkd/README.md):

    ARKRELAY_ARKD_TARGET      host:port of arkd's public gRPC port (7070)
    ARKRELAY_ARKD_FUNDED_KEY  hex secret key owning spendable VTXOs there (pays for tests)
    ARKRELAY_ARKD_TLS         1 when arkd serves TLS; ARKRELAY_ARKD_TLS_CERT its cert.pem
    ARKRELAY_ARKD_MACAROON    hex macaroon, if the deployment wants one
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from ark import ArkHarness, Maker
from assets import Maker as AssetMaker
from lightning import Maker as LightningMaker

from arkrelay_core.config import Duration, HostPort, Secret
from arkrelay_core.interfaces import FinalizedTx, PluginContext, TxOutputSpec, Vtxo
from arkrelay_core.nostr import bip340

BACKENDS = ("arkd", "lnd", "tapd")
REFERENCE = {"ark": "arkd", "lightning": "lnd", "assets": "tapd"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="store",
        default=None,
        choices=BACKENDS,
        help="the backend the contract suites run against (default: each role's reference)",
    )


def _backend(request: pytest.FixtureRequest, role: str) -> str:
    return request.config.getoption("--backend") or REFERENCE[role]


@pytest.fixture
def ark_maker(request: pytest.FixtureRequest) -> Maker:
    backend = _backend(request, "ark")
    if backend == "arkd":
        return _arkd_maker(os.environ)
    pytest.skip(f"backend {backend!r} implements no ArkBackend")


@pytest.fixture
def lightning_maker(request: pytest.FixtureRequest) -> LightningMaker:
    backend = _backend(request, "lightning")
    if backend == "lnd":
        from lnd_backend import lnd_maker

        return lnd_maker(os.environ)
    pytest.skip(f"backend {backend!r} implements no LightningBackend")


@pytest.fixture
def asset_maker(request: pytest.FixtureRequest) -> AssetMaker:
    backend = _backend(request, "assets")
    if backend == "tapd":
        from tapd_backend import tapd_maker

        return tapd_maker(os.environ)
    pytest.skip(f"backend {backend!r} implements no AssetBackend")


def _context(service_pub: str) -> PluginContext:
    def no_events(*_: Any) -> Any:
        raise RuntimeError("the ark backend never signs events")

    return PluginContext(
        network="regtest",
        data_dir=Path(tempfile.gettempdir()),
        listening_pubkeys=lambda: [service_pub],
        sign_event=no_events,
        instance_name="ark",
    )


def _arkd_maker(environ: Mapping[str, str]) -> Maker:
    from arkrelay_arkd.client import ArkdBackend
    from arkrelay_arkd.inventory import Inventory
    from arkrelay_arkd.settings import ArkdSettings, InventorySettings, SimulatorSettings

    # No automatic top-ups or alerts during the checks.
    quiet = InventorySettings(critical=0, warning=0, target=0, check_every=Duration(3600))
    target = environ.get("ARKRELAY_ARKD_TARGET")

    def signer(secret: bytes) -> Callable[[bytes], bytes]:
        return lambda sighash: bip340.schnorr_sign(secret, sighash)

    @asynccontextmanager
    async def simulated() -> AsyncIterator[ArkHarness]:
        service = bip340.generate_secret_key()
        # vtxo_min_amount = 1 (arkd's default is the dust limit) so the checks that pay
        # amounts below dust run here too; against a real arkd they skip unless it allows them.
        backend = ArkdBackend(
            ArkdSettings(inventory=quiet, simulator=SimulatorSettings(vtxo_min_amount=1)),
            _context(bip340.xonly_public_key(service).hex()),
        )
        sim, inventory = backend.simulator, backend.inventory
        assert sim is not None and inventory is not None

        async def expire(vtxo: Vtxo) -> None:
            await trio.to_thread.run_sync(sim.expire, vtxo.vtxo_id)

        async def inventory_send(outputs: Sequence[TxOutputSpec]) -> FinalizedTx:
            return await backend.send_from_inventory(outputs, signer(service))

        async with trio.open_nursery() as nursery:
            await nursery.start(backend.serve)
            yield ArkHarness(backend, backend.board, expire, inventory.owner, inventory_send)
            nursery.cancel_scope.cancel()

    @asynccontextmanager
    async def remote() -> AsyncIterator[ArkHarness]:
        funded_hex = environ.get("ARKRELAY_ARKD_FUNDED_KEY")
        funded = bytes.fromhex(funded_hex) if funded_hex else None
        macaroon = environ.get("ARKRELAY_ARKD_MACAROON")
        cert = environ.get("ARKRELAY_ARKD_TLS_CERT")
        settings = ArkdSettings(
            target=HostPort.parse(target or ""),
            tls=environ.get("ARKRELAY_ARKD_TLS", "") in {"1", "true", "yes"},
            tls_cert=Path(cert) if cert else None,
            macaroon=Secret(macaroon, origin="env:ARKRELAY_ARKD_MACAROON") if macaroon else None,
            inventory=quiet,
        )
        backend = ArkdBackend(settings)
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.serve)
            if funded is None:
                yield ArkHarness(backend)
            else:
                bank = Inventory(backend, bip340.xonly_public_key(funded).hex(), quiet)

                async def fund(owner: str, amount: int) -> Vtxo:
                    done = await bank.send([TxOutputSpec(owner, amount)], signer(funded))
                    return next(v for v in done.created if v.owner == owner and v.amount == amount)

                async def bank_send(outputs: Sequence[TxOutputSpec]) -> FinalizedTx:
                    return await bank.send(outputs, signer(funded))

                yield ArkHarness(backend, fund, None, bank.owner, bank_send)
            nursery.cancel_scope.cancel()

    return remote if target else simulated
