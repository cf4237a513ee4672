"""Fixtures for ceremony tests: a real nostr-relay process and the gateway on it, and
@arkade-os/sdk judging the ark txs a test made."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins.nostr.tests.relay_process import NostrRelay
from tests.arksdk.judge import journal_entries, judge, sdk_missing


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[NostrRelay]:
    process = NostrRelay(tmp_path / "relay")
    process.start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def sdk_rebuild(tmp_path: Path) -> Iterator[None]:
    """After every ceremony test, each ark tx and checkpoint an arkd simulator under
    ``tmp_path`` accepted is rebuilt by @arkade-os/sdk and compared byte for byte
    (tests/arksdk/judge.py); a difference fails the test. Without node or the SDK the
    test runs unjudged, with a warning (under ARKRELAY_REQUIRE_NODE=1, as in CI, it
    fails)."""
    yield
    entries = journal_entries(tmp_path)
    if not entries:
        return
    missing = sdk_missing()
    if missing is not None:
        warnings.warn(
            f"{len(entries)} ark txs not judged by @arkade-os/sdk: {missing}", stacklevel=1
        )
        return
    judge(entries)
