"""Fixtures for ceremony tests: a real nostr-relay process and the gateway on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins.nostr.tests.relay_process import NostrRelay


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[NostrRelay]:
    process = NostrRelay(tmp_path / "relay")
    process.start()
    yield process
    process.stop()
