"""The plugin registers through the entry point and builds from config."""

from __future__ import annotations

from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.settings import ArkdSettings
from arkrelay_core.interfaces import ArkBackend
from arkrelay_core.plugins import load_plugins


def test_arkd_is_an_installed_ark_backend() -> None:
    registry = load_plugins()
    plugin = registry.get("ark", "arkd")
    assert plugin.distribution == "arkrelay-arkd"
    assert plugin.spec.settings_type is ArkdSettings
    backend = plugin.spec.factory(ArkdSettings(), None)
    assert isinstance(backend, ArkdBackend) and isinstance(backend, ArkBackend)
    assert backend.features == frozenset({"board"})  # no target: the simulator
