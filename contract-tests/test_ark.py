"""The ArkBackend suite on the backend chosen with ``--backend`` (one test per check)."""

from __future__ import annotations

import pytest
from ark import ARK_CHECKS, Maker, run_check


@pytest.mark.parametrize("check", list(ARK_CHECKS))
async def test_ark_backend(ark_maker: Maker, check: str) -> None:
    await run_check(ark_maker, check)
