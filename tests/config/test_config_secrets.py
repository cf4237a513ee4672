"""Secrets resolve from literals, env: and file:, and never show their value."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pytest

from arkrelay_core.config import ConfigError, effective_config, load_config
from arkrelay_core.config.values import Secret

ADMIN_KEY = "s3cr3t-admin-key-0123456789"
MACAROON = "0201036c6e640258030a10b3"


def write_config(tmp_path: Path, gateway_admin_key: str, macaroon: str) -> Path:
    path = tmp_path / "arkrelay.toml"
    path.write_text(
        f"""
[gateway]
admin_key = "{gateway_admin_key}"

[backend.lightning]
plugin = "lnd"
target = "127.0.0.1:10009"
macaroon = "{macaroon}"
"""
    )
    return path


def load(path: Path, plugins, environ: dict[str, str] | None = None):
    return load_config(path, settings_resolver=plugins.resolve, environ=environ or {})


def test_env_and_file_secrets_resolve(tmp_path: Path, plugins) -> None:
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "admin.macaroon").write_text(MACAROON + "\n")
    path = write_config(tmp_path, "env:ARKRELAY_ADMIN_KEY", "file:creds/admin.macaroon")
    config = load(path, plugins, {"ARKRELAY_ADMIN_KEY": ADMIN_KEY})

    assert config.gateway.admin_key is not None
    assert config.gateway.admin_key.reveal() == ADMIN_KEY
    macaroon = config.backends["lightning"].settings.macaroon
    assert macaroon.reveal() == MACAROON  # trailing newline stripped
    assert macaroon.origin == f"file:{tmp_path / 'creds' / 'admin.macaroon'}"


def test_env_secret_is_read_from_the_process_environment_by_default(
    tmp_path: Path, plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARKRELAY_ADMIN_KEY", ADMIN_KEY)
    path = write_config(tmp_path, "env:ARKRELAY_ADMIN_KEY", MACAROON)
    config = load_config(path, settings_resolver=plugins.resolve)
    assert config.gateway.admin_key is not None
    assert config.gateway.admin_key.reveal() == ADMIN_KEY


def test_literal_secret(tmp_path: Path, plugins) -> None:
    config = load(write_config(tmp_path, ADMIN_KEY, MACAROON), plugins)
    assert config.gateway.admin_key is not None
    assert config.gateway.admin_key.reveal() == ADMIN_KEY
    assert config.gateway.admin_key.origin is None


def test_secrets_never_show(tmp_path: Path, plugins, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "admin.macaroon").write_text(MACAROON)
    path = write_config(tmp_path, "env:ARKRELAY_ADMIN_KEY", "file:admin.macaroon")
    with caplog.at_level(logging.DEBUG):
        config = load(path, plugins, {"ARKRELAY_ADMIN_KEY": ADMIN_KEY})
    shown = effective_config(config)

    for text in (repr(config), str(config), json.dumps(shown), caplog.text):
        assert ADMIN_KEY not in text
        assert MACAROON not in text
    assert shown["gateway"]["admin_key"] == "*** (env:ARKRELAY_ADMIN_KEY)"
    assert shown["backend"]["lightning"]["macaroon"] == (
        f"*** (file:{tmp_path / 'admin.macaroon'})"
    )


def test_literal_secret_is_masked_without_origin(tmp_path: Path, plugins) -> None:
    config = load(write_config(tmp_path, ADMIN_KEY, MACAROON), plugins)
    assert effective_config(config)["gateway"]["admin_key"] == "***"
    assert effective_config(config)["backend"]["lightning"]["macaroon"] == "***"


def test_missing_env_var_names_key_and_variable(tmp_path: Path, plugins) -> None:
    path = write_config(tmp_path, "env:ARKRELAY_ADMIN_KEY", MACAROON)
    with pytest.raises(ConfigError) as info:
        load(path, plugins, {})
    assert str(info.value) == (
        f"{path}: gateway.admin_key: environment variable ARKRELAY_ADMIN_KEY is not set"
    )


def test_empty_env_var_is_an_error(tmp_path: Path, plugins) -> None:
    path = write_config(tmp_path, "env:ARKRELAY_ADMIN_KEY", MACAROON)
    with pytest.raises(ConfigError) as info:
        load(path, plugins, {"ARKRELAY_ADMIN_KEY": ""})
    assert str(info.value) == (
        f"{path}: gateway.admin_key: environment variable ARKRELAY_ADMIN_KEY is empty"
    )


def test_unreadable_secret_file_names_key_and_file(tmp_path: Path, plugins) -> None:
    path = write_config(tmp_path, ADMIN_KEY, "file:missing.macaroon")
    with pytest.raises(ConfigError) as info:
        load(path, plugins)
    assert str(info.value) == (
        f"{path}: backend.lightning.macaroon: cannot read secret file "
        f"{tmp_path / 'missing.macaroon'}: No such file or directory"
    )


def test_empty_secret_file_is_an_error(tmp_path: Path, plugins) -> None:
    (tmp_path / "admin.macaroon").write_text("\n")
    path = write_config(tmp_path, ADMIN_KEY, "file:admin.macaroon")
    with pytest.raises(ConfigError) as info:
        load(path, plugins)
    assert str(info.value) == (
        f"{path}: backend.lightning.macaroon: secret file {tmp_path / 'admin.macaroon'} is empty"
    )


def test_absolute_secret_file_path(tmp_path: Path, plugins) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "m").write_text(MACAROON)
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    path = write_config(conf_dir, ADMIN_KEY, f"file:{elsewhere / 'm'}")
    assert load(path, plugins).backends["lightning"].settings.macaroon.reveal() == MACAROON


def test_secret_value_object() -> None:
    secret = Secret("hunter2hunter2", origin="env:X")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert repr(secret) == "Secret('*** (env:X)')"
    assert secret == Secret("hunter2hunter2")
    assert secret != Secret("hunter3hunter3")
    with pytest.raises(TypeError):
        pickle.dumps(secret)
