"""The AssetBackend suite on the backend chosen with ``--backend`` (one test per check)."""

from __future__ import annotations

import pytest
from assets import ASSET_CHECKS, Maker, run_check


@pytest.mark.parametrize("check", list(ASSET_CHECKS))
async def test_asset_backend(asset_maker: Maker, check: str) -> None:
    await run_check(asset_maker, check)
