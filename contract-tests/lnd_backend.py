"""The lnd maker for the LightningBackend suite: the simulated network, or two real lnd
nodes with a channel between them when ``ARKRELAY_LND_TARGET`` is set:

    ARKRELAY_LND_TARGET            host:port of the gateway's lnd (gRPC, 10009)
    ARKRELAY_LND_TLS_CERT          its tls.cert
    ARKRELAY_LND_MACAROON          hex macaroon (or ARKRELAY_LND_MACAROON_PATH: the file)
    ARKRELAY_LND_PAYER_TARGET      the same three for a second node with a channel to the
    ARKRELAY_LND_PAYER_TLS_CERT    first one (both directions need liquidity)
    ARKRELAY_LND_PAYER_MACAROON    (or ARKRELAY_LND_PAYER_MACAROON_PATH)
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from lightning import LightningHarness, Maker

from arkrelay_core.config import Duration, HostPort, Secret

__all__ = ["lnd_maker", "settings_from_env"]


def settings_from_env(environ: Mapping[str, str], prefix: str) -> object:
    from arkrelay_lnd.settings import LndSettings

    macaroon = environ.get(f"{prefix}_MACAROON")
    macaroon_path = environ.get(f"{prefix}_MACAROON_PATH")
    cert = environ.get(f"{prefix}_TLS_CERT")
    return LndSettings(
        target=HostPort.parse(environ[f"{prefix}_TARGET"]),
        tls_cert=Path(cert) if cert else None,
        macaroon=Secret(macaroon, origin=f"env:{prefix}_MACAROON") if macaroon else None,
        macaroon_path=Path(macaroon_path) if macaroon_path else None,
    )


def lnd_maker(environ: Mapping[str, str]) -> Maker:
    from arkrelay_lnd.client import LndBackend
    from arkrelay_lnd.settings import LndSettings
    from arkrelay_lnd.sim import LndSimulator

    @asynccontextmanager
    async def simulated() -> AsyncIterator[LightningHarness]:
        sim = LndSimulator()
        await trio.to_thread.run_sync(sim.start_all)
        gateway_node = sim.node("gateway")
        with tempfile.TemporaryDirectory() as tmp:
            cert = Path(tmp) / "tls.cert"
            cert.write_bytes(sim.tls.cert_pem)

            def backend(node: str) -> LndBackend:
                return LndBackend(
                    LndSettings(
                        target=HostPort.parse(sim.target(node)),
                        tls_cert=cert,
                        macaroon=Secret(sim.node(node).macaroon_hex),
                        backoff_initial=Duration(0.05),
                        pay_grace=Duration(1),
                    )
                )

            async def set_stuck(on: bool) -> None:
                gateway_node.stuck = on

            async def release(payment_hash: str, succeed: bool) -> None:
                await trio.to_thread.run_sync(
                    lambda: sim.network.release(
                        gateway_node, bytes.fromhex(payment_hash), succeed=succeed
                    )
                )

            async def mine(blocks: int) -> None:
                await trio.to_thread.run_sync(sim.network.mine, blocks)

            async def set_fee_floor(sat_per_vbyte: int) -> None:
                sim.network.chain.fee_floor = sat_per_vbyte

            gateway, payer = backend("gateway"), backend("outside")
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(gateway.serve)
                    await nursery.start(payer.serve)
                    yield LightningHarness(
                        gateway,
                        payer,
                        set_stuck=set_stuck,
                        release=release,
                        mine=mine,
                        set_fee_floor=set_fee_floor,
                        routing_fee_msat=sim.network.fee_msat(21_000_000),
                    )
                    nursery.cancel_scope.cancel()
            finally:
                await trio.to_thread.run_sync(sim.stop_all)

    @asynccontextmanager
    async def remote() -> AsyncIterator[LightningHarness]:
        gateway = LndBackend(settings_from_env(environ, "ARKRELAY_LND"))  # type: ignore[arg-type]
        payer = LndBackend(settings_from_env(environ, "ARKRELAY_LND_PAYER"))  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)
            await nursery.start(payer.serve)
            yield LightningHarness(gateway, payer)
            nursery.cancel_scope.cancel()

    return remote if environ.get("ARKRELAY_LND_TARGET") else simulated
