"""Every invalid config gives exactly one line: file, dotted key, what was wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from arkrelay_core.config import ConfigError, UnknownPluginError, load_config

VALID = """\
[gateway]
network = "regtest"

[transport.relays]
relays = ["wss://relay.example"]

[backend.ark]
plugin = "arkd"
target = "127.0.0.1:7070"

[backend.lightning]
plugin = "lnd"
target = "127.0.0.1:10009"
macaroon = "0201036c6e64"

[settlement]
plugin = "anchor"
every = "1h"
"""


def error_of(load_text, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(text)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_valid_base_loads(load_text) -> None:
    assert set(load_text(VALID).backends) == {"ark", "lightning"}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "relays = [",
            "relyas = [",
            "arkrelay.toml: transport.relays.relyas: unknown key (did you mean 'relays'?)",
            id="typo-in-plugin-settings",
        ),
        pytest.param(
            'network = "regtest"',
            'network = "regest"',
            "arkrelay.toml: gateway.network: expected one of mainnet, testnet, testnet4, "
            "signet, mutinynet, regtest, got 'regest' (did you mean 'regtest'?)",
            id="bad-network",
        ),
        pytest.param(
            'network = "regtest"',
            'netwrok = "regtest"',
            "arkrelay.toml: gateway.netwrok: unknown key (did you mean 'network'?)",
            id="typo-in-gateway",
        ),
        pytest.param(
            'target = "127.0.0.1:7070"',
            "target = 7070",
            "arkrelay.toml: backend.ark.target: expected str, got int",
            id="wrong-type",
        ),
        pytest.param(
            'plugin = "arkd"',
            'plugin = "arkdd"',
            "arkrelay.toml: backend.ark.plugin: no installed ark plugin named 'arkdd' "
            "(installed: arkd) (did you mean 'arkd'?)",
            id="unknown-plugin",
        ),
        pytest.param(
            'plugin = "arkd"',
            'plugin = "lnd"',
            "arkrelay.toml: backend.ark.plugin: no installed ark plugin named 'lnd' "
            "(installed: arkd)",
            id="unknown-plugin-no-close-match",
        ),
        pytest.param(
            "[transport.relays]",
            "[transport.relay]",
            "arkrelay.toml: transport.relay: no installed transport plugin named 'relay' "
            "(installed: endpoint, relays) (did you mean 'relays'?)",
            id="transport-named-after-unknown-plugin",
        ),
        pytest.param(
            'plugin = "arkd"\n',
            "",
            "arkrelay.toml: backend.ark.plugin: missing required key; "
            "expected str (the name of an installed ark plugin)",
            id="backend-without-plugin",
        ),
        pytest.param(
            'plugin = "anchor"\n',
            "",
            "arkrelay.toml: settlement.plugin: missing required key; "
            "expected str (the name of an installed settlement plugin)",
            id="settlement-without-plugin",
        ),
        pytest.param(
            "[backend.lightning]",
            "[backend.lighting]",
            "arkrelay.toml: backend.lighting: unknown backend role; "
            "expected one of ark, lightning, assets (did you mean 'lightning'?)",
            id="unknown-backend-role",
        ),
        pytest.param(
            "[settlement]",
            "[settlment]",
            "arkrelay.toml: settlment: unknown table (did you mean 'settlement'?)",
            id="unknown-table",
        ),
        pytest.param(
            'relays = ["wss://relay.example"]',
            "",
            "arkrelay.toml: transport.relays.relays: missing required key; expected array of str",
            id="missing-plugin-setting",
        ),
        pytest.param(
            'relays = ["wss://relay.example"]',
            'relays = ["wss://relay.example", 7]',
            "arkrelay.toml: transport.relays.relays[1]: expected str, got int",
            id="wrong-type-in-array",
        ),
        pytest.param(
            'every = "1h"',
            'every = "1 hour"',
            "arkrelay.toml: settlement.every: invalid duration '1 hour'; expected a duration "
            "such as 90s, 15m, 1h, 2d or a number of seconds",
            id="bad-duration",
        ),
        pytest.param(
            'target = "127.0.0.1:10009"',
            'target = "::1:10009"',
            "arkrelay.toml: backend.lightning.target: invalid address '::1:10009': "
            "an IPv6 host needs brackets, as in [::1]:10009",
            id="bad-hostport",
        ),
        pytest.param(
            'macaroon = "0201036c6e64"',
            "macaroon = 201036",
            "arkrelay.toml: backend.lightning.macaroon: "
            "expected str (a secret, env:NAME or file:PATH), got int",
            id="secret-of-wrong-type",
        ),
        pytest.param(
            'macaroon = "0201036c6e64"',
            'macaroon = "0201036c6e64"\npeers = { alice = "10.0.0.1:9735", "bob b" = "nohost" }',
            "arkrelay.toml: backend.lightning.peers.\"bob b\": invalid address 'nohost'; "
            "expected host:port, e.g. 127.0.0.1:7070 or [::1]:7070",
            id="bad-value-inside-a-dict",
        ),
        pytest.param(
            'network = "regtest"',
            'event_window = "0s"',
            "arkrelay.toml: gateway.event_window: must be longer than 0s; expected a duration "
            "such as 90s, 15m, 1h, 2d or a number of seconds",
            id="zero-event-window",
        ),
        pytest.param(
            'network = "regtest"',
            'database = "mysql://arkrelay:pw@db/arkrelay"',
            "arkrelay.toml: gateway.database: unsupported database URL scheme 'mysql'; "
            "expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DBNAME",
            id="unsupported-database",
        ),
        pytest.param(
            'network = "regtest"',
            'database = "postgresql://arkrelay@db/arkrelay"',
            "arkrelay.toml: gateway.database: unsupported database URL scheme 'postgresql'; "
            "expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DBNAME "
            "(did you mean 'postgresql+psycopg'?)",
            id="database-needs-psycopg-driver",
        ),
        pytest.param(
            'network = "regtest"',
            'database = "arkrelay.db"',
            "arkrelay.toml: gateway.database: not a database URL; "
            "expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DBNAME",
            id="database-not-a-url",
        ),
        pytest.param(
            'network = "regtest"',
            'admin_key = "short"',
            "arkrelay.toml: gateway.admin_key: admin key is too short (5 characters); "
            "expected at least 16",
            id="short-admin-key",
        ),
        pytest.param(
            "[gateway]\n",
            "",
            "arkrelay.toml: network: unknown top-level key "
            "(did you mean to put it under [gateway]?)",
            id="gateway-key-outside-its-table",
        ),
    ],
)
def test_one_line_error(load_text, old: str, new: str, expected: str) -> None:
    assert old in VALID
    assert error_of(load_text, VALID.replace(old, new, 1)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[gateway]\nnetwork = "regtest"\n[gatway]\nnetwork = "regtest"\n',
            "arkrelay.toml: gatway: unknown table (did you mean 'gateway'?)",
        ),
        ('gateway = "regtest"\n', "arkrelay.toml: gateway: expected table, got str"),
        (
            '[transport]\nrelays = ["wss://relay.example"]\n',
            "arkrelay.toml: transport.relays: expected a table [transport.relays], got array",
        ),
        (
            '[backend.assets]\nplugin = "tapd"\n',
            "arkrelay.toml: backend.assets.plugin: no installed assets plugin named 'tapd' "
            "(installed: none)",
        ),
        (
            '[backend.ark]\nplugin = 3\ntarget = "x"\n',
            "arkrelay.toml: backend.ark.plugin: "
            "expected str (the name of an installed ark plugin), got int",
        ),
        (
            '[settlement]\nplugin = "lax"\nnotes = "x"\n',
            "arkrelay.toml: settlement.notes: unknown key (did you mean 'note'?)",
        ),
        (
            '[transport."relay pool"]\nplugin = "relays"\nrelays = "wss://relay.example"\n',
            'arkrelay.toml: transport."relay pool".relays: expected array, got str',
        ),
    ],
)
def test_one_line_error_for_other_shapes(load_text, text: str, expected: str) -> None:
    assert error_of(load_text, text) == expected


def test_toml_syntax_error_names_file_and_line(load_text) -> None:
    message = error_of(load_text, '[gateway]\nnetwork = "regtest\n')
    assert message.startswith("arkrelay.toml: line 2, column ")
    assert ": invalid TOML: " in message


def test_duplicate_key_is_a_toml_error(load_text) -> None:
    message = error_of(load_text, '[gateway]\nnetwork = "regtest"\nnetwork = "signet"\n')
    assert message.startswith("arkrelay.toml: ")
    assert "invalid TOML" in message


def test_missing_file_is_named(tmp_path: Path, plugins) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path, settings_resolver=plugins.resolve)
    assert str(info.value) == f"{path}: config file not found"


def test_error_names_the_real_file_path(tmp_path: Path, plugins) -> None:
    path = tmp_path / "arkrelay.toml"
    path.write_text('[transport.relays]\nrelyas = ["wss://relay.example"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, settings_resolver=plugins.resolve)
    assert str(info.value) == (
        f"{path}: transport.relays.relyas: unknown key (did you mean 'relays'?)"
    )
    assert info.value.source == str(path)
    assert info.value.key == "transport.relays.relyas"
    assert info.value.problem == "unknown key (did you mean 'relays'?)"


def test_unknown_plugin_error_lists_installed_names() -> None:
    error = UnknownPluginError("transport", "nostrr", ["relays", "endpoint"])
    assert error.available == ["endpoint", "relays"]
    assert str(error) == (
        "no installed transport plugin named 'nostrr' (installed: endpoint, relays)"
    )
