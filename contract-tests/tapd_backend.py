"""The tapd maker for the AssetBackend suite: the tapd simulator over the simulated
Lightning network, or a real tapd when ``ARKRELAY_TAPD_TARGET`` is set:

    ARKRELAY_TAPD_TARGET        host:port of tapd's gRPC (10029, or litd's 8443)
    ARKRELAY_TAPD_TLS_CERT      its tls.cert (litd's under litd)
    ARKRELAY_TAPD_MACAROON      hex macaroon (or ARKRELAY_TAPD_MACAROON_PATH: the file)
    ARKRELAY_TAPD_ASSET_CHANNELS=1   under litd in integrated mode
    ARKRELAY_LND_PAYER_*        as for the lnd suite: a node that pays asset invoices
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from assets import AssetHarness, Maker

from arkrelay_core.config import HostPort, Secret

__all__ = ["tapd_maker"]


def tapd_maker(environ: Mapping[str, str]) -> Maker:
    from arkrelay_lnd.client import LndBackend
    from arkrelay_lnd.settings import LndSettings
    from arkrelay_lnd.sim import LndSimulator, SimNetwork
    from arkrelay_tapd.client import TapdBackend
    from arkrelay_tapd.settings import TapdSettings
    from arkrelay_tapd.sim import TapdSimulator

    @asynccontextmanager
    async def simulated() -> AsyncIterator[AssetHarness]:
        network = SimNetwork()
        lnd, tapd = LndSimulator(network), TapdSimulator(network)
        await trio.to_thread.run_sync(lnd.start_all)
        await trio.to_thread.run_sync(tapd.start_all)
        outside = network.nodes["outside"]
        with tempfile.TemporaryDirectory() as tmp:
            lnd_cert, tapd_cert = Path(tmp) / "lnd.cert", Path(tmp) / "tapd.cert"
            lnd_cert.write_bytes(lnd.tls.cert_pem)
            tapd_cert.write_bytes(tapd.tls.cert_pem)
            gateway = TapdBackend(
                TapdSettings(
                    target=HostPort.parse(tapd.target("gateway")),
                    tls_cert=tapd_cert,
                    macaroon=Secret(tapd.macaroon_hex("gateway")),
                    asset_channels=True,
                )
            )
            payer = LndBackend(
                LndSettings(
                    target=HostPort.parse(lnd.target("outside")),
                    tls_cert=lnd_cert,
                    macaroon=Secret(lnd.macaroon_hex("outside")),
                )
            )

            async def mine(blocks: int) -> None:
                await trio.to_thread.run_sync(network.mine, blocks)

            async def foreign_proof() -> tuple[str, bytes]:
                def issue() -> tuple[str, bytes]:
                    tapd.ledger.mint(outside, "USDX", 5_000, decimals=2, meta=b"{}")
                    _, [asset] = tapd.ledger.finalize(outside)
                    network.mine()
                    return asset.asset_id.hex(), tapd.ledger.export_proof(outside, asset.asset_id)

                return await trio.to_thread.run_sync(issue)

            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(gateway.serve)
                    await nursery.start(payer.serve)
                    yield AssetHarness(gateway, payer, mine, foreign_proof)
                    nursery.cancel_scope.cancel()
            finally:
                await trio.to_thread.run_sync(tapd.stop_all)
                await trio.to_thread.run_sync(lnd.stop_all)

    @asynccontextmanager
    async def remote() -> AsyncIterator[AssetHarness]:
        macaroon = environ.get("ARKRELAY_TAPD_MACAROON")
        macaroon_path = environ.get("ARKRELAY_TAPD_MACAROON_PATH")
        cert = environ.get("ARKRELAY_TAPD_TLS_CERT")
        backend = TapdBackend(
            TapdSettings(
                target=HostPort.parse(environ["ARKRELAY_TAPD_TARGET"]),
                tls_cert=Path(cert) if cert else None,
                macaroon=Secret(macaroon, origin="env:ARKRELAY_TAPD_MACAROON")
                if macaroon
                else None,
                macaroon_path=Path(macaroon_path) if macaroon_path else None,
                asset_channels=environ.get("ARKRELAY_TAPD_ASSET_CHANNELS", "") in {"1", "true"},
            )
        )
        payer = None
        if environ.get("ARKRELAY_LND_PAYER_TARGET"):
            from lnd_backend import settings_from_env

            payer = LndBackend(settings_from_env(environ, "ARKRELAY_LND_PAYER"))  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.serve)
            if payer is not None:
                await nursery.start(payer.serve)
            yield AssetHarness(backend, payer)
            nursery.cancel_scope.cancel()

    return remote if environ.get("ARKRELAY_TAPD_TARGET") else simulated
