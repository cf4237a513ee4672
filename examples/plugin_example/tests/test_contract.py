"""ArkRelay's AssetBackend contract suite, one test per check, on this plugin."""

from __future__ import annotations

import pytest
from arkrelay_core.interfaces import AssetBackend
from assets import ASSET_CHECKS, run_check
from example_harness import context, example_maker

from arkrelay_example_assets.backend import ExampleAssetBackend
from arkrelay_example_assets.settings import ExampleAssetsSettings


def test_the_backend_implements_the_interface() -> None:
    assert isinstance(ExampleAssetBackend(ExampleAssetsSettings(), context("a")), AssetBackend)


@pytest.mark.parametrize("check", list(ASSET_CHECKS))
async def test_asset_contract(check: str) -> None:
    await run_check(example_maker(), check)
