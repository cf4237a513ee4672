"""Running a conformance suite's checks: each on a fresh harness, each under its own
deadline of ``check_seconds``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import trio

__all__ = ["run_all", "run_named"]

Checks = Mapping[str, Callable[[Any], Awaitable[None]]]


async def run_named(
    checks: Checks,
    maker: Callable[[], AbstractAsyncContextManager[Any]],
    name: str,
    check_seconds: float,
) -> None:
    with trio.fail_after(check_seconds):
        async with maker() as harness:
            await checks[name](harness)


async def run_all(
    checks: Checks, maker: Callable[[], AbstractAsyncContextManager[Any]], check_seconds: float
) -> None:
    """Every check (skipped checks are skipped, not failed)."""
    for name in checks:
        try:
            await run_named(checks, maker, name, check_seconds)
        except pytest.skip.Exception:
            continue
