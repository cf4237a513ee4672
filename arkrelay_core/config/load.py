"""Load the operator's TOML file into frozen msgspec Structs.

Every problem becomes one `ConfigError` line naming the file and the dotted key
(``arkrelay.toml: transport.relays.relyas: unknown key (did you mean 'relays'?)``), so an
operator never reads a traceback to find a typo. Plugin sections are validated against the
``settings_type`` the plugin host returns for them.

Relative paths (``Path`` fields, ``file:`` secrets, the default ``data_dir``) are taken
relative to the config file's directory, so the gateway behaves the same whatever directory
it is started from. An explicit ``database`` URL is passed to SQLAlchemy as written.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from .decode import DecodeContext, field_names, render_key, suggest
from .model import (
    BACKEND_ROLES,
    DATABASE_SCHEMES,
    DEFAULT_DATA_DIR,
    MIN_ADMIN_KEY_LENGTH,
    CeremonySettings,
    Config,
    ConfigError,
    GatewaySettings,
    HttpSettings,
    OutboxSettings,
    PluginSection,
    SettingsResolver,
    default_database,
)
from .values import DURATION_SYNTAX, Duration, HostPort, Secret

__all__ = ["effective_config", "load_config", "load_config_text"]

logger = logging.getLogger(__name__)


def load_config(
    path: Path | None,
    *,
    settings_resolver: SettingsResolver,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load and validate ``path``; ``None`` gives the embedded defaults (nothing configured).

    ``environ`` (default ``os.environ``) is where ``env:NAME`` secrets are looked up.
    """
    if path is None:
        return Config()
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, None, "config file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(source, None, "config file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(source, None, f"cannot read config file: {exc.strerror}") from None
    return load_config_text(
        text,
        source=source,
        settings_resolver=settings_resolver,
        base_dir=path.parent,
        environ=environ,
    )


def load_config_text(
    text: str,
    *,
    source: str,
    settings_resolver: SettingsResolver,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load config from TOML ``text``; ``source`` names it in errors, ``base_dir`` anchors paths."""
    ctx = DecodeContext(
        source=source,
        base_dir=Path(".") if base_dir is None else base_dir,
        environ=os.environ if environ is None else environ,
        resolver=settings_resolver,
    )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(source, exc) from None
    fields: dict[str, Any] = {}
    for name, value in data.items():
        loader = _TABLES.get(name)
        if loader is None:
            raise ctx.error([name], _unknown_top_level(name, value))
        fields.update(loader(ctx, value))
    if "gateway" not in data:
        fields.update(_load_gateway(ctx, {}))
    config = Config(source=source, **fields)
    logger.debug("loaded config from %s", source)
    return config


def effective_config(config: Config) -> dict[str, Any]:
    """The resolved config as plain data in the file's shape, every secret masked."""
    out: dict[str, Any] = {}
    for table, field in _FIXED_TABLES.items():
        out[table] = _to_plain(getattr(config, field))
    out["gateway"]["database"] = _mask_url_password(config.gateway.database)
    if config.transports:
        out["transport"] = {name: _plain_section(s) for name, s in config.transports.items()}
    if config.backends:
        out["backend"] = {role: _plain_section(s) for role, s in config.backends.items()}
    if config.settlement is not None:
        out["settlement"] = _plain_section(config.settlement)
    if config.http is not None:
        out["http"] = _to_plain(config.http)
    return out


# --------------------------------------------------------------------------------------------
# Top-level tables. To add a table such as [fees]: give `Config` a field for it, then add a
# loader here (`ctx.convert(table, TheStruct, [name])` is enough for a plain Struct with
# defaults) and list it in `_FIXED_TABLES` so `effective_config` shows it.

_Loader = Callable[["DecodeContext", Any], dict[str, Any]]


def _load_gateway(ctx: DecodeContext, table: Any) -> dict[str, Any]:
    path = ["gateway"]
    settings = ctx.convert(table, GatewaySettings, path)
    given = table if isinstance(table, dict) else {}
    derived: dict[str, Any] = {}
    data_dir = settings.data_dir
    if "data_dir" not in given:
        data_dir = derived["data_dir"] = ctx.base_dir / DEFAULT_DATA_DIR
    if "database" not in given:
        derived["database"] = default_database(data_dir)
    if "key_file" not in given:
        derived["key_file"] = data_dir / "gateway.key"
    settings = msgspec.structs.replace(settings, **derived)

    if settings.event_window.seconds <= 0:
        raise ctx.error(
            [*path, "event_window"], f"must be longer than 0s; expected {DURATION_SYNTAX}"
        )
    expected_url = "expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DBNAME"
    scheme, sep, _ = settings.database.partition("://")
    if not sep:
        raise ctx.error([*path, "database"], f"not a database URL; {expected_url}")
    if scheme not in DATABASE_SCHEMES:
        # Only the scheme is echoed: the rest of the URL may hold a password.
        raise ctx.error(
            [*path, "database"],
            f"unsupported database URL scheme {scheme!r}; {expected_url}"
            f"{suggest(scheme, DATABASE_SCHEMES)}",
        )
    admin_key = settings.admin_key
    if admin_key is not None and len(admin_key.reveal()) < MIN_ADMIN_KEY_LENGTH:
        raise ctx.error(
            [*path, "admin_key"],
            f"admin key is too short ({len(admin_key.reveal())} characters); "
            f"expected at least {MIN_ADMIN_KEY_LENGTH}",
        )
    return {"gateway": settings}


def _load_transports(ctx: DecodeContext, table: Any) -> dict[str, Any]:
    ctx.require_table(["transport"], table, "a table of transports, one [transport.<name>] each")
    sections: dict[str, PluginSection] = {}
    for name, body in table.items():
        path = ["transport", name]
        ctx.require_table(path, body, f"a table [transport.{render_key([name])}]")
        sections[name] = ctx.plugin_section("transport", path, body, default_plugin=name)
    return {"transports": sections}


def _load_backends(ctx: DecodeContext, table: Any) -> dict[str, Any]:
    ctx.require_table(["backend"], table, "a table of backends, one [backend.<role>] each")
    sections: dict[str, PluginSection] = {}
    for role, body in table.items():
        path = ["backend", role]
        if role not in BACKEND_ROLES:
            raise ctx.error(
                path,
                f"unknown backend role; expected one of {', '.join(BACKEND_ROLES)}"
                f"{suggest(role, BACKEND_ROLES)}",
            )
        ctx.require_table(path, body, f"a table [backend.{role}]")
        sections[role] = ctx.plugin_section(role, path, body, default_plugin=None)
    return {"backends": sections}


def _load_settlement(ctx: DecodeContext, table: Any) -> dict[str, Any]:
    ctx.require_table(["settlement"], table, "a table [settlement]")
    section = ctx.plugin_section("settlement", ["settlement"], table, default_plugin=None)
    return {"settlement": section}


# Tables that map 1:1 onto a Config field holding a Struct with defaults (table -> field).
_FIXED_TABLES: dict[str, str] = {"gateway": "gateway", "outbox": "outbox", "ceremony": "ceremony"}


def _load_outbox(ctx: DecodeContext, table: Any) -> dict[str, Any]:
    settings = ctx.convert(table, OutboxSettings, ["outbox"])
    if not 0 < settings.retry_initial.seconds <= settings.retry_max.seconds:
        raise ctx.error(
            ["outbox", "retry_max"], "expected retry_initial > 0s and retry_max >= retry_initial"
        )
    return {"outbox": settings}


def _load_ceremony(ctx: DecodeContext, table: Any) -> dict[str, Any]:
    settings = ctx.convert(table, CeremonySettings, ["ceremony"])
    if (
        settings.step_timeout.seconds <= 0
        or settings.session_timeout.seconds < settings.step_timeout.seconds
    ):
        raise ctx.error(
            ["ceremony", "session_timeout"],
            "expected step_timeout > 0s and session_timeout >= step_timeout",
        )
    tickers = [a.ticker.lower() for a in settings.assets]
    if "gbtc" in tickers or len(set(tickers)) != len(tickers):
        raise ctx.error(["ceremony", "assets"], "tickers must be unique and not gBTC")
    return {"ceremony": settings}


def _load_http(ctx: DecodeContext, table: Any) -> dict[str, Any]:
    return {"http": ctx.convert(table, HttpSettings, ["http"])}


_TABLES: dict[str, _Loader] = {
    "gateway": _load_gateway,
    "http": _load_http,
    "outbox": _load_outbox,
    "ceremony": _load_ceremony,
    "transport": _load_transports,
    "backend": _load_backends,
    "settlement": _load_settlement,
}


def _unknown_top_level(name: str, value: Any) -> str:
    if not isinstance(value, dict) and name in field_names(GatewaySettings):
        return "unknown top-level key (did you mean to put it under [gateway]?)"
    what = "unknown table" if isinstance(value, dict) else "unknown key"
    return f"{what}{suggest(name, _TABLES)}"


def _toml_error(source: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(exc)
    match = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message, flags=re.DOTALL)
    if match:
        where, problem = f"line {match[2]}, column {match[3]}", match[1]
    else:
        where, problem = "end of file", message.removesuffix(" (at end of document)")
    problem = " ".join(problem.split())  # tomllib may quote a newline from the input
    return ConfigError(source, None, f"{where}: invalid TOML: {problem[:1].lower()}{problem[1:]}")


def _plain_section(section: PluginSection) -> dict[str, Any]:
    return {"plugin": section.plugin, **_to_plain(section.settings)}


def _to_plain(struct: msgspec.Struct) -> Any:
    return msgspec.to_builtins(struct, enc_hook=_encode_value)


def _encode_value(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.masked()
    if isinstance(value, Duration | HostPort):
        return str(value)
    if isinstance(value, Path):
        return value.as_posix()
    raise NotImplementedError(f"cannot show a value of type {type(value).__name__}")


def _mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
