"""A realistic config loads into the right Structs; omitted values get their defaults."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

import arkrelay_core.config as config_module
from arkrelay_core.config import (
    GBTC_ASSET_ID,
    Config,
    ConfigError,
    GatewaySettings,
    PluginSection,
    effective_config,
    load_config,
    load_config_text,
)
from arkrelay_core.config.values import Duration, HostPort

FULL = """
[gateway]
network = "signet"
data_dir = "state"
event_window = "30m"
admin_key = "env:ARKRELAY_ADMIN_KEY"

[transport.relays]
relays = ["wss://relay.example", "wss://relay2.example"]

[transport.backup]
plugin = "relays"
relays = ["wss://backup.example"]
reconnect = "1m"

[transport.endpoint]
listen = "[::1]:7447"

[backend.ark]
plugin = "arkd"
target = "127.0.0.1:7070"

[backend.lightning]
plugin = "lnd"
target = "127.0.0.1:10009"
macaroon = "file:secrets/admin.macaroon"
tls_cert = "tls.cert"

[settlement]
plugin = "anchor"
every = "1h"
"""


@pytest.fixture
def full_file(tmp_path: Path) -> Path:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "admin.macaroon").write_text("0201036c6e64\n")
    path = tmp_path / "arkrelay.toml"
    path.write_text(FULL)
    return path


def test_full_file_loads(full_file: Path, plugins, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARKRELAY_ADMIN_KEY", "a-long-admin-key-for-tests")
    config = load_config(full_file, settings_resolver=plugins.resolve)
    base = full_file.parent

    assert config.source == str(full_file)
    gateway = config.gateway
    assert gateway.network == "signet"
    assert gateway.data_dir == base / "state"
    assert gateway.database == f"sqlite:///{base}/state/arkrelay.db"
    assert gateway.key_file == base / "state" / "gateway.key"
    assert gateway.event_window == Duration(1800)
    assert gateway.admin_key is not None
    assert gateway.admin_key.reveal() == "a-long-admin-key-for-tests"

    assert list(config.transports) == ["relays", "backup", "endpoint"]
    assert config.transports["relays"] == PluginSection(
        plugin="relays",
        settings=plugins.relays(relays=["wss://relay.example", "wss://relay2.example"]),
    )
    assert config.transports["backup"] == PluginSection(
        plugin="relays",
        settings=plugins.relays(relays=["wss://backup.example"], reconnect=Duration(60)),
    )
    assert config.transports["endpoint"].settings == plugins.endpoint(listen=HostPort("::1", 7447))

    assert config.backends["ark"] == PluginSection(
        plugin="arkd", settings=plugins.arkd(target="127.0.0.1:7070")
    )
    lnd = config.backends["lightning"]
    assert lnd.plugin == "lnd"
    assert lnd.settings.target == HostPort("127.0.0.1", 10009)
    assert lnd.settings.macaroon.reveal() == "0201036c6e64"
    assert lnd.settings.tls_cert == base / "tls.cert"

    assert config.settlement == PluginSection(
        plugin="anchor", settings=plugins.anchor(every=Duration(3600))
    )


def test_no_file_means_embedded_defaults(plugins) -> None:
    config = load_config(None, settings_resolver=plugins.resolve)
    assert config == Config()
    assert config.source == "<defaults>"
    assert config.transports == {}
    assert config.backends == {}
    assert config.settlement is None
    assert config.gateway == GatewaySettings(
        network="regtest",
        data_dir=Path(".arkrelay"),
        database="sqlite:///.arkrelay/arkrelay.db",
        key_file=Path(".arkrelay/gateway.key"),
        event_window=Duration(3600),
        admin_key=None,
    )


def test_empty_file_puts_data_beside_the_config(tmp_path: Path, plugins) -> None:
    path = tmp_path / "arkrelay.toml"
    path.write_text("")
    gateway = load_config(path, settings_resolver=plugins.resolve).gateway
    assert gateway.data_dir == tmp_path / ".arkrelay"
    assert gateway.database == f"sqlite:///{tmp_path}/.arkrelay/arkrelay.db"
    assert gateway.key_file == tmp_path / ".arkrelay" / "gateway.key"


def test_explicit_database_and_key_file_are_kept(load_text) -> None:
    config = load_text(
        """
        [gateway]
        data_dir = "/var/lib/arkrelay"
        database = "postgresql+psycopg://arkrelay@db.internal/arkrelay"
        key_file = "/etc/arkrelay/gateway.key"
        event_window = 7200
        """
    )
    assert config.gateway.data_dir == Path("/var/lib/arkrelay")
    assert config.gateway.database == "postgresql+psycopg://arkrelay@db.internal/arkrelay"
    assert config.gateway.key_file == Path("/etc/arkrelay/gateway.key")
    assert config.gateway.event_window.seconds == 7200


def test_config_is_frozen(load_text) -> None:
    config = load_text('[gateway]\nnetwork = "mainnet"\n')
    with pytest.raises(AttributeError):
        config.gateway.network = "regtest"  # type: ignore[misc]


def test_effective_config_is_plain_data_in_the_file_shape(
    full_file: Path, plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARKRELAY_ADMIN_KEY", "a-long-admin-key-for-tests")
    config = load_config(full_file, settings_resolver=plugins.resolve)
    base = full_file.parent
    assert effective_config(config) == {
        "gateway": {
            "network": "signet",
            "data_dir": f"{base}/state",
            "database": f"sqlite:///{base}/state/arkrelay.db",
            "key_file": f"{base}/state/gateway.key",
            "event_window": "30m",
            "admin_key": "*** (env:ARKRELAY_ADMIN_KEY)",
        },
        "outbox": {"min_accepts": 1, "retry_initial": "2s", "retry_max": "5m", "concurrency": 16},
        "ceremony": {
            "step_timeout": "2m",
            "session_timeout": "15m",
            "requests_per_minute": 120,
            "max_open_sessions": 16,
            "instance": "",
            "lease_ttl": "30s",
            "gbtc_asset_id": GBTC_ASSET_ID,
            "assets": [],
            "fees": {
                "fee_asset": "gBTC",
                "transfer": 10,
                "split": 10,
                "swap_leg": 10,
                "land_ppm": 1000,
            },
            "land_fee_limit_sat": 100,
            "land_payment_timeout": "1m",
            "lift_invoice_expiry": "1h",
        },
        "transport": {
            "relays": {
                "plugin": "relays",
                "relays": ["wss://relay.example", "wss://relay2.example"],
                "reconnect": "5s",
            },
            "backup": {"plugin": "relays", "relays": ["wss://backup.example"], "reconnect": "1m"},
            "endpoint": {"plugin": "endpoint", "listen": "[::1]:7447"},
        },
        "backend": {
            "ark": {"plugin": "arkd", "target": "127.0.0.1:7070", "tls": False},
            "lightning": {
                "plugin": "lnd",
                "target": "127.0.0.1:10009",
                "macaroon": f"*** (file:{base}/secrets/admin.macaroon)",
                "tls_cert": f"{base}/tls.cert",
                "peers": {},
            },
        },
        "settlement": {"plugin": "anchor", "every": "1h", "max_fee_rate": 10},
    }
    # Plain data: any encoder can print it.
    assert msgspec.json.decode(msgspec.json.encode(effective_config(config))) == effective_config(
        config
    )


def test_effective_config_masks_a_database_password(load_text) -> None:
    config = load_text(
        '[gateway]\ndatabase = "postgresql+psycopg://arkrelay:hunter2@db:5432/arkrelay"\n'
    )
    shown = effective_config(config)["gateway"]["database"]
    assert shown == "postgresql+psycopg://arkrelay:***@db:5432/arkrelay"
    assert config.gateway.database.endswith("hunter2@db:5432/arkrelay")


def test_public_names() -> None:
    assert set(config_module.__all__) == {
        "AssetListing",
        "BACKEND_ROLES",
        "CeremonySettings",
        "GBTC_ASSET_ID",
        "DEFAULTS_SOURCE",
        "NETWORKS",
        "PLUGIN_ROLES",
        "Config",
        "ConfigError",
        "Duration",
        "GatewaySettings",
        "HostPort",
        "HttpSettings",
        "Network",
        "OutboxSettings",
        "PluginSection",
        "Secret",
        "SettingsResolver",
        "UnknownPluginError",
        "effective_config",
        "load_config",
        "load_config_text",
    }
    for name in config_module.__all__:
        assert hasattr(config_module, name)


def test_outbox_table(plugins) -> None:
    config = load_config_text(
        '[outbox]\nmin_accepts = 2\nretry_max = "1m"\n',
        source="gw.toml",
        settings_resolver=plugins.resolve,
    )
    assert (config.outbox.min_accepts, config.outbox.retry_max.seconds) == (2, 60)
    with pytest.raises(ConfigError) as info:
        load_config_text(
            '[outbox]\nretry_initial = "10m"\nretry_max = "1m"\n',
            source="gw.toml",
            settings_resolver=plugins.resolve,
        )
    assert str(info.value) == (
        "gw.toml: outbox.retry_max: expected retry_initial > 0s and retry_max >= retry_initial"
    )
