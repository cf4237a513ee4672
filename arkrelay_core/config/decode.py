"""msgspec decoding with errors an operator can act on.

msgspec reports ``Expected `str`, got `int` - at `$.a[0].b```; this turns that into the
dotted TOML key, the expected type in words, and a suggestion for a near-miss name.
"""

from __future__ import annotations

import difflib
import enum
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from .model import ConfigError, PluginSection, SettingsResolver, UnknownPluginError
from .values import DURATION_SYNTAX, Duration, HostPort, Secret, ValueProblem, kind_of

__all__ = ["DecodeContext", "field_names", "kind_of", "render_key", "suggest"]

_S = typing.TypeVar("_S", bound=msgspec.Struct)


class DecodeContext:
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
        return ConfigError(self.source, render_key(path) or None, problem)

    def require_table(self, path: list[str | int], value: Any, what: str) -> None:
        if not isinstance(value, dict):
            raise self.error(path, f"expected {what}, got {kind_of(value)}")

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
                    f"expected str (the name of an installed {role} plugin), got {kind_of(plugin)}",
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
            problem = f"{exc}{suggest(plugin, exc.available)}"
            raise self.error(plugin_path, problem) from None
        return PluginSection(
            plugin=plugin, settings=self.convert(settings_data, settings_type, path)
        )

    def convert(self, data: Any, struct_type: type[_S], path: list[str | int]) -> _S:
        if isinstance(data, dict):
            # msgspec only rejects unknown keys when the Struct asks it to; a plugin's
            # top-level settings get the check regardless.
            known = field_names(struct_type)
            for key in data:
                if key not in known:
                    raise self.error([*path, key], f"unknown key{suggest(key, known)}")
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
                raise TypeError(f"expected str (a path), got {kind_of(value)}")
            return self.base_dir / Path(value).expanduser()
        raise NotImplementedError

    def _secret(self, value: Any) -> Secret:
        if not isinstance(value, str):
            raise TypeError(f"expected str (a secret, env:NAME or file:PATH), got {kind_of(value)}")
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
            return [*path, key], f"unknown key{suggest(key, field_names(tp))}"
        if match := re.fullmatch(r"Object missing required field `(.*)`", text):
            key = match[1]
            field_type = _field_types(tp).get(key, Any)
            return [*path, key], f"missing required key; expected {_type_name(field_type)}"
        if text.startswith("Invalid enum value"):
            choices = _choices(tp)
            listed = ", ".join(str(c) for c in choices)
            problem = f"expected one of {listed}, got {value!r}"
            if isinstance(value, str):
                problem += suggest(value, [str(c) for c in choices])
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


def field_names(tp: Any) -> list[str]:
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


def render_key(path: list[str | int]) -> str:
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
            continue
        part = segment if _BARE_KEY.fullmatch(segment) else json.dumps(segment)
        out = f"{out}.{part}" if out else part
    return out


def suggest(word: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""
