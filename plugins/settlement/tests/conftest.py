"""Fixtures: the ceremony tests' real nostr-relay process, one per test."""

from tests.ceremony.conftest import relay

__all__ = ["relay"]
