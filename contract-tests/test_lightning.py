"""The LightningBackend suite on the backend chosen with ``--backend`` (one test per check)."""

from __future__ import annotations

import pytest
from lightning import LIGHTNING_CHECKS, Maker, run_check


@pytest.mark.parametrize("check", list(LIGHTNING_CHECKS))
async def test_lightning_backend(lightning_maker: Maker, check: str) -> None:
    await run_check(lightning_maker, check)
