"""Fixtures for the Nostr transport tests: real nostr-relay processes on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .relay_process import NostrRelay


@pytest.fixture
def relay_factory(tmp_path: Path) -> Iterator[Callable[..., NostrRelay]]:
    """Make (and start) nostr-relay processes; every one is stopped after the test."""
    made: list[NostrRelay] = []

    def make(*, auth_writers: tuple[str, ...] | None = None, start: bool = True) -> NostrRelay:
        relay = NostrRelay(tmp_path / f"relay{len(made)}", auth_writers=auth_writers)
        made.append(relay)
        if start:
            relay.start()
        return relay

    yield make
    for relay in made:
        relay.stop()


@pytest.fixture
def nostr_relay(relay_factory: Callable[..., NostrRelay]) -> NostrRelay:
    return relay_factory()
