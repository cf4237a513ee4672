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

import difflib
import enum
import json
import logging
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec

from .config_types import DURATION_SYNTAX, Duration, HostPort, Secret, ValueProblem

__all__ = [
    "BACKEND_ROLES",
    "DEFAULTS_SOURCE",
    "NETWORKS",
    "PLUGIN_ROLES",
    "Config",
    "ConfigError",
    "Duration",
    "GatewaySettings",
    "HostPort",
    "Network",
    "PluginSection",
    "Secret",
    "SettingsResolver",
    "UnknownPluginError",
    "effective_config",
    "load_config",
    "load_config_text",
]

logger = logging.getLogger(__name__)

Network = Literal["mainnet", "testnet", "testnet4", "signet", "mutinynet", "regtest"]
NETWORKS: tuple[str, ...] = typing.get_args(Network)
BACKEND_ROLES: tuple[str, ...] = ("ark", "lightning", "assets")
PLUGIN_ROLES: tuple[str, ...] = ("transport", *BACKEND_ROLES, "settlement")
DEFAULTS_SOURCE = "<defaults>"
DEFAULT_DATA_DIR = Path(".arkrelay")
MIN_ADMIN_KEY_LENGTH = 16
_DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")

_S = typing.TypeVar("_S", bound=msgspec.Struct)

SettingsResolver = Callable[[str, str], type[msgspec.Struct]]
"""``(role, plugin_name) -> settings Struct type``; raises `UnknownPluginError`."""


class ConfigError(Exception):
    """The config file is unreadable or invalid; ``str()`` is one line for the operator."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


class UnknownPluginError(LookupError):
    """No installed plugin of ``role`` is called ``name``; ``available`` lists those that are."""

    def __init__(self, role: str, name: str, available: Iterable[str]) -> None:
        self.role = role
        self.name = name
        self.available = sorted(available)
        installed = ", ".join(self.available) or "none"
        super().__init__(f"no installed {role} plugin named {name!r} (installed: {installed})")


def _default_database(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'arkrelay.db').as_posix()}"


class GatewaySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[gateway]`` table."""

    network: Network = "regtest"
    data_dir: Path = DEFAULT_DATA_DIR
    database: str = _default_database(DEFAULT_DATA_DIR)
    key_file: Path = DEFAULT_DATA_DIR / "gateway.key"
    event_window: Duration = Duration(3600)
    admin_key: Secret | None = None


class PluginSection(msgspec.Struct, frozen=True):
    """One configured plugin instance: its name and its decoded settings Struct."""

    plugin: str
    settings: msgspec.Struct


class Config(msgspec.Struct, frozen=True):
    """The whole validated config. ``backends`` is keyed by role (ark, lightning, assets)."""

    gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)
    transports: dict[str, PluginSection] = {}
    backends: dict[str, PluginSection] = {}
    settlement: PluginSection | None = None
    source: str = DEFAULTS_SOURCE


# --------------------------------------------------------------------------------------------
# Entry points


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
    ctx = _Context(
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
    return out


# --------------------------------------------------------------------------------------------
# Top-level tables. To add a table such as [fees]: give `Config` a field for it, then add a
# loader here (`ctx.convert(table, TheStruct, [name])` is enough for a plain Struct with
# defaults) and list it in `_FIXED_TABLES` so `effective_config` shows it.

_Loader = Callable[["_Context", Any], dict[str, Any]]


def _load_gateway(ctx: _Context, table: Any) -> dict[str, Any]:
    path = ["gateway"]
    settings = ctx.convert(table, GatewaySettings, path)
    given = table if isinstance(table, dict) else {}
    derived: dict[str, Any] = {}
    data_dir = settings.data_dir
    if "data_dir" not in given:
        data_dir = derived["data_dir"] = ctx.base_dir / DEFAULT_DATA_DIR
    if "database" not in given:
        derived["database"] = _default_database(data_dir)
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
    if scheme not in _DATABASE_SCHEMES:
        # Only the scheme is echoed: the rest of the URL may hold a password.
        raise ctx.error(
            [*path, "database"],
            f"unsupported database URL scheme {scheme!r}; {expected_url}"
            f"{_suggest(scheme, _DATABASE_SCHEMES)}",
        )
    admin_key = settings.admin_key
    if admin_key is not None and len(admin_key.reveal()) < MIN_ADMIN_KEY_LENGTH:
        raise ctx.error(
            [*path, "admin_key"],
            f"admin key is too short ({len(admin_key.reveal())} characters); "
            f"expected at least {MIN_ADMIN_KEY_LENGTH}",
        )
    return {"gateway": settings}


def _load_transports(ctx: _Context, table: Any) -> dict[str, Any]:
    ctx.require_table(["transport"], table, "a table of transports, one [transport.<name>] each")
    sections: dict[str, PluginSection] = {}
    for name, body in table.items():
        path = ["transport", name]
        ctx.require_table(path, body, f"a table [transport.{_render_key([name])}]")
        sections[name] = ctx.plugin_section("transport", path, body, default_plugin=name)
    return {"transports": sections}


def _load_backends(ctx: _Context, table: Any) -> dict[str, Any]:
    ctx.require_table(["backend"], table, "a table of backends, one [backend.<role>] each")
    sections: dict[str, PluginSection] = {}
    for role, body in table.items():
        path = ["backend", role]
        if role not in BACKEND_ROLES:
            raise ctx.error(
                path,
                f"unknown backend role; expected one of {', '.join(BACKEND_ROLES)}"
                f"{_suggest(role, BACKEND_ROLES)}",
            )
        ctx.require_table(path, body, f"a table [backend.{role}]")
        sections[role] = ctx.plugin_section(role, path, body, default_plugin=None)
    return {"backends": sections}


def _load_settlement(ctx: _Context, table: Any) -> dict[str, Any]:
    ctx.require_table(["settlement"], table, "a table [settlement]")
    section = ctx.plugin_section("settlement", ["settlement"], table, default_plugin=None)
    return {"settlement": section}


# Tables that map 1:1 onto a Config field holding a Struct with defaults (table -> field).
_FIXED_TABLES: dict[str, str] = {"gateway": "gateway"}

_TABLES: dict[str, _Loader] = {
    "gateway": _load_gateway,
    "transport": _load_transports,
    "backend": _load_backends,
    "settlement": _load_settlement,
}


def _unknown_top_level(name: str, value: Any) -> str:
    if not isinstance(value, dict) and name in _field_names(GatewaySettings):
        return "unknown top-level key (did you mean to put it under [gateway]?)"
    what = "unknown table" if isinstance(value, dict) else "unknown key"
    return f"{what}{_suggest(name, _TABLES)}"


# --------------------------------------------------------------------------------------------
# Decoding with precise errors


class _Context:
    def __init__(
        self,
        *,
        source: str,
        base_dir: Path,
        environ: Mapping[str, str],
        resolver: SettingsResolver,
    ) -> None:
        self.source = source
        self.base_dir = base_dir
        self.environ = environ
        self.resolver = resolver

    def error(self, path: list[str | int], problem: str) -> ConfigError:
        return ConfigError(self.source, _render_key(path) or None, problem)

    def require_table(self, path: list[str | int], value: Any, what: str) -> None:
        if not isinstance(value, dict):
            raise self.error(path, f"expected {what}, got {_kind(value)}")

    def plugin_section(
        self,
        role: str,
        path: list[str | int],
        body: dict[str, Any],
        *,
        default_plugin: str | None,
    ) -> PluginSection:
        settings_data = dict(body)
        if "plugin" in settings_data:
            plugin = settings_data.pop("plugin")
            plugin_path = [*path, "plugin"]
            if not isinstance(plugin, str) or not plugin:
                raise self.error(
                    plugin_path,
                    f"expected str (the name of an installed {role} plugin), got {_kind(plugin)}",
                )
        elif default_plugin is not None:
            plugin, plugin_path = default_plugin, path
        else:
            raise self.error(
                [*path, "plugin"],
                f"missing required key; expected str (the name of an installed {role} plugin)",
            )
        try:
            settings_type = self.resolver(role, plugin)
        except UnknownPluginError as exc:
            problem = f"{exc}{_suggest(plugin, exc.available)}"
            raise self.error(plugin_path, problem) from None
        return PluginSection(
            plugin=plugin, settings=self.convert(settings_data, settings_type, path)
        )

    def convert(self, data: Any, struct_type: type[_S], path: list[str | int]) -> _S:
        if isinstance(data, dict):
            # msgspec only rejects unknown keys when the Struct asks it to; a plugin's
            # top-level settings get the check regardless.
            known = _field_names(struct_type)
            for key in data:
                if key not in known:
                    raise self.error([*path, key], f"unknown key{_suggest(key, known)}")
        try:
            return msgspec.convert(data, struct_type, dec_hook=self.dec_hook)
        except msgspec.ValidationError as exc:
            key_path, problem = self._explain(exc, struct_type, data)
            raise self.error([*path, *key_path], problem) from None

    def dec_hook(self, tp: Any, value: Any) -> Any:
        if tp is Secret:
            return self._secret(value)
        if tp is Duration:
            return Duration.parse(value)
        if tp is HostPort:
            return HostPort.parse(value)
        if tp is Path:
            if not isinstance(value, str) or not value:
                raise TypeError(f"expected str (a path), got {_kind(value)}")
            return self.base_dir / Path(value).expanduser()
        raise NotImplementedError

    def _secret(self, value: Any) -> Secret:
        if not isinstance(value, str):
            raise TypeError(f"expected str (a secret, env:NAME or file:PATH), got {_kind(value)}")
        if value.startswith("env:"):
            name = value.removeprefix("env:")
            resolved = self.environ.get(name)
            if resolved is None:
                raise ValueProblem(f"environment variable {name} is not set")
            if not resolved:
                raise ValueProblem(f"environment variable {name} is empty")
            return Secret(resolved, origin=value)
        if value.startswith("file:"):
            path = self.base_dir / Path(value.removeprefix("file:")).expanduser()
            try:
                resolved = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ValueProblem(f"cannot read secret file {path}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise ValueProblem(f"secret file {path} is not UTF-8 text") from None
            if not resolved:
                raise ValueProblem(f"secret file {path} is empty")
            return Secret(resolved, origin=f"file:{path}")
        if not value:
            raise ValueProblem("empty secret; expected a value, env:NAME or file:PATH")
        return Secret(value)

    def _explain(
        self, exc: msgspec.ValidationError, root: type, data: Any
    ) -> tuple[list[str | int], str]:
        text, sep, where = str(exc).rpartition(" - at `")
        if not sep:
            text, where = str(exc), "$"
        path, tp, value = self._walk(root, data, where.rstrip("`"))

        if match := re.fullmatch(r"Object contains unknown field `(.*)`", text):
            key = match[1]
            return [*path, key], f"unknown key{_suggest(key, _field_names(tp))}"
        if match := re.fullmatch(r"Object missing required field `(.*)`", text):
            key = match[1]
            field_type = _field_types(tp).get(key, Any)
            return [*path, key], f"missing required key; expected {_type_name(field_type)}"
        if text.startswith("Invalid enum value"):
            choices = _choices(tp)
            listed = ", ".join(str(c) for c in choices)
            problem = f"expected one of {listed}, got {value!r}"
            if isinstance(value, str):
                problem += _suggest(value, [str(c) for c in choices])
            return path, problem
        if text.startswith("Expected "):
            text = text.replace("`object`", "table").replace("`", "")
            return path, "e" + text[1:]
        return path, text

    def _walk(self, root: type, data: Any, where: str) -> tuple[list[str | int], Any, Any]:
        """Follow msgspec's ``$.a[0].b`` path through the type and the data.

        msgspec writes dict keys as ``[...]``; the key is recovered by finding the entry that
        fails to decode on its own.
        """
        path: list[str | int] = []
        tp: Any = root
        node: Any = data
        for token in re.findall(r"\.[^.\[]+|\[\d+\]|\[\.\.\.\]", where):
            if token == "[...]":
                tp = _step(tp, "[...]")
                key = self._failing_key(node, tp)
                path.append(key)
                node = node.get(key) if isinstance(node, dict) else None
            elif token.startswith("["):
                index = int(token[1:-1])
                path.append(index)
                tp = _step(tp, index)
                node = node[index] if isinstance(node, list) and index < len(node) else None
            else:
                name = token[1:]
                path.append(name)
                tp = _step(tp, name)
                node = node.get(name) if isinstance(node, dict) else None
        return path, tp, node

    def _failing_key(self, mapping: Any, value_type: Any) -> str:
        if not isinstance(mapping, dict) or not mapping:
            return "<key>"
        for key, value in mapping.items():
            try:
                msgspec.convert(value, value_type, dec_hook=self.dec_hook)
            except msgspec.ValidationError:
                return str(key)
        return "<key>"


# --------------------------------------------------------------------------------------------
# Type introspection helpers


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional layers."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _step(tp: Any, segment: str | int) -> Any:
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        # A union of containers: take the member that can hold this kind of segment.
        for member in typing.get_args(tp):
            stepped = _step(member, segment)
            if stepped is not Any:
                return stepped
        return Any
    if isinstance(segment, str) and segment != "[...]" and _is_struct(tp):
        return _field_types(tp).get(segment, Any)
    args = typing.get_args(tp)
    if segment == "[...]" and origin is dict and len(args) == 2:
        return args[1]
    if isinstance(segment, int) and origin in (list, set, frozenset) and args:
        return args[0]
    if isinstance(segment, int) and origin is tuple and args:
        return args[0] if args[-1] is Ellipsis else args[min(segment, len(args) - 1)]
    return Any


def _field_types(tp: Any) -> dict[str, Any]:
    tp = _unwrap(tp)
    if not _is_struct(tp):
        return {}
    return {f.encode_name: f.type for f in msgspec.structs.fields(tp)}


def _field_names(tp: Any) -> list[str]:
    return list(_field_types(tp))


def _choices(tp: Any) -> list[Any]:
    tp = _unwrap(tp)
    if typing.get_origin(tp) is Literal:
        return list(typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [member.value for member in tp]
    return []


def _type_name(tp: Any) -> str:
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if origin is Literal or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
        return "one of " + ", ".join(str(c) for c in _choices(tp))
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(names)
    if origin in (list, set, frozenset) or (origin is tuple and typing.get_args(tp)[-1:] == (...,)):
        return f"array of {_type_name(typing.get_args(tp)[0])}"
    if origin is tuple:
        return "array"
    if origin is dict or _is_struct(tp):
        return "table"
    names = {
        Secret: "str (a secret, env:NAME or file:PATH)",
        Duration: DURATION_SYNTAX,
        HostPort: "host:port",
        Path: "str (a path)",
    }
    if tp in names:
        return names[tp]
    return getattr(tp, "__name__", str(tp))


# --------------------------------------------------------------------------------------------
# Formatting helpers

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _render_key(path: list[str | int]) -> str:
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
            continue
        part = segment if _BARE_KEY.fullmatch(segment) else json.dumps(segment)
        out = f"{out}.{part}" if out else part
    return out


def _suggest(word: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


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
