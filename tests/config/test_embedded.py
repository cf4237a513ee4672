"""The embedded defaults `arkrelay run` composes without a config."""

from __future__ import annotations

from pathlib import Path

import pytest

from arkrelay_core.config import ConfigError, effective_config, load_config_text
from arkrelay_core.config.embedded import embedded_config_text
from arkrelay_core.plugins import load_plugins


def _load(text: str, base: Path):
    registry = load_plugins()
    return load_config_text(
        text, source="<defaults>", settings_resolver=registry.settings_type, base_dir=base
    )


def test_the_defaults_compose_the_endpoint_and_the_three_simulated_daemons(tmp_path):
    text, missing = embedded_config_text(lambda role, name: True)
    assert missing == []
    config = _load(text, tmp_path)
    assert config.gateway.network == "regtest"
    assert config.gateway.data_dir == tmp_path / ".arkrelay"
    assert str(config.transports["endpoint"].settings.listen) == "127.0.0.1:7447"
    assert {role: s.plugin for role, s in config.backends.items()} == {
        "ark": "arkd",
        "lightning": "lnd",
        "assets": "tapd",
    }
    # No target anywhere: each plugin runs its simulator.
    assert all(s.settings.target is None for s in config.backends.values())


def test_plugins_not_installed_are_left_out_and_named(tmp_path):
    text, missing = embedded_config_text(lambda role, name: name not in ("lnd", "tapd"))
    assert missing == ["lightning/lnd", "assets/tapd"]
    assert set(_load(text, tmp_path).backends) == {"ark"}


def test_a_relay_pool_can_take_the_endpoints_place(tmp_path):
    text, _ = embedded_config_text(
        lambda role, name: True, data_dir=str(tmp_path / "d"), relays=["ws://127.0.0.1:9"]
    )
    config = _load(text, tmp_path)
    assert list(config.transports) == ["relays"]
    assert config.transports["relays"].settings.relays == ["ws://127.0.0.1:9"]
    assert config.gateway.data_dir == tmp_path / "d"


def test_the_http_table_is_off_unless_given_and_checked_like_the_others(tmp_path):
    assert _load('[gateway]\nnetwork = "regtest"\n', tmp_path).http is None
    config = _load('[http]\nlisten = "127.0.0.1:9999"\npage_size = 10\n', tmp_path)
    assert config.http is not None and config.http.page_size == 10
    assert effective_config(config)["http"]["listen"] == "127.0.0.1:9999"
    with pytest.raises(ConfigError, match=r"http\.page_sise: unknown key"):
        _load("[http]\npage_sise = 10\n", tmp_path)
    text, _ = embedded_config_text(lambda role, name: True)
    assert str(_load(text, tmp_path).http.listen) == "127.0.0.1:8080"
