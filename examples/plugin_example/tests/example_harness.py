"""The maker the AssetBackend contract suite runs this plugin with.

Each harness is two issuers: the gateway's backend under test and an outside issuer whose
assets the gateway learns of through proofs. Neither mines on its own (``block_interval``
0); the suite's ``mine`` power mines the gateway's chain. No ``payer``: this backend has no
asset channels, so the suite skips the checks that pay over Lightning.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from arkrelay_core.config import Duration
from arkrelay_core.interfaces import PluginContext
from assets import AssetHarness, Maker

from arkrelay_example_assets.backend import ExampleAssetBackend
from arkrelay_example_assets.settings import ExampleAssetsSettings

__all__ = ["context", "example_maker"]


def context(name: str) -> PluginContext:
    def no_events(*_: Any) -> Any:
        raise RuntimeError("an asset backend never signs events")

    return PluginContext(
        network="regtest",
        data_dir=Path(tempfile.gettempdir()),
        listening_pubkeys=lambda: [],
        sign_event=no_events,
        instance_name=name,
    )


def example_maker() -> Maker:
    settings = ExampleAssetsSettings(block_interval=Duration(0))

    @asynccontextmanager
    async def make() -> AsyncIterator[AssetHarness]:
        gateway = ExampleAssetBackend(settings, context("assets"))
        outside = ExampleAssetBackend(settings, context("outside"))

        async def mine(blocks: int) -> None:
            gateway.chain.mine(blocks)

        async def foreign_proof() -> tuple[str, bytes]:
            meta = await outside.mint_asset("USDX", 5_000, decimals=2)
            outside.chain.mine(1)
            return meta.asset_id, outside.export_proof(meta.asset_id)

        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)
            await nursery.start(outside.serve)
            yield AssetHarness(gateway, mine=mine, foreign_proof=foreign_proof)
            nursery.cancel_scope.cancel()

    return make
