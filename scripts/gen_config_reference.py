"""Write docs/operators/configuration.md from the settings Structs themselves.

    uv run python scripts/gen_config_reference.py             # rewrite the reference
    uv run python scripts/gen_config_reference.py --out FILE  # write FILE instead

Every key comes from the code: the core tables from ``arkrelay_core.config``, the plugin
tables from the ``settings_type`` of every plugin the workspace's distributions register
(through ``load_plugins()``). Types and bounds come from ``msgspec.inspect``, defaults from
the Structs (the core tables' as an empty config file loads them, so derived paths show as
derived), descriptions from the ``#:`` comments above each field and each Struct's
docstring. tests/config/test_config_reference.py fails when the file in the tree differs.
"""

from __future__ import annotations

import argparse
import ast
import enum
import inspect
import json
import re
import sys
import textwrap
import tomllib
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi

from arkrelay_core.config import Config, PluginSection, load_config_text
from arkrelay_core.config.load import _TABLES
from arkrelay_core.config.model import BACKEND_ROLES, PLUGIN_ROLES
from arkrelay_core.config.values import DURATION_SYNTAX, HOSTPORT_SYNTAX, Duration, HostPort, Secret
from arkrelay_core.plugins import InstalledPlugin, PluginRegistry, load_plugins

__all__ = ["CONFIG_DIR", "OUT", "TablePath", "core_tables", "main", "plugin_tables", "render"]

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "operators" / "configuration.md"
#: Stands for the config file's directory in the defaults that are derived from it.
CONFIG_DIR = Path("<config dir>")
#: The tables that hold plugin sections; every other table of the file is a core Struct.
PLUGIN_TABLES = ("transport", "backend", "settlement")


@dataclass(frozen=True)
class TablePath:
    """Where a Struct sits in the file: ``[backend.ark.inventory]`` or ``[[ceremony.assets]]``."""

    path: str
    array: bool = False
    plugin: str | None = None

    def heading(self) -> str:
        table = f"`[[{self.path}]]`" if self.array else f"`[{self.path}]`"
        return table if self.plugin is None else f'{table} (`plugin = "{self.plugin}"`)'

    def child(self, key: str, *, array: bool = False) -> TablePath:
        return TablePath(f"{self.path}.{key}", array, self.plugin)


# --------------------------------------------------------------------------------------------
# What to document


def core_tables() -> list[tuple[str, type[msgspec.Struct]]]:
    """The core tables in the order `Config` declares them: (TOML name, Struct)."""
    tables = []
    for field in msgspec.structs.fields(Config):
        info = _strip_none(mi.type_info(field.type))
        if isinstance(info, mi.StructType) and info.cls is not PluginSection:
            tables.append((field.encode_name, info.cls))
    known = {name for name, _ in tables} | set(PLUGIN_TABLES)
    if known != set(_TABLES):
        # The loader reads a table this script does not know how to document (or the other
        # way round): teach one of them before the reference can be trusted.
        raise RuntimeError(f"config tables {sorted(_TABLES)} != documented {sorted(known)}")
    return tables


def workspace_distributions() -> set[str]:
    """The distributions this repository ships (the uv workspace's members)."""
    root = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    names = {root["project"]["name"]}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for member in sorted(REPO.glob(f"{pattern}/pyproject.toml")):
            names.add(tomllib.loads(member.read_text(encoding="utf-8"))["project"]["name"])
    return names


def plugin_tables(registry: PluginRegistry) -> list[InstalledPlugin]:
    """The shipped plugins, by role (as PLUGIN_ROLES orders them) then name.

    Plugins of other distributions are left out, so the reference does not depend on what
    else happens to be installed; a shipped plugin that fails to load is an error.
    """
    shipped = workspace_distributions()
    broken = [f.describe() for f in registry.failures if f.distribution in shipped]
    if broken:
        raise RuntimeError("shipped plugins failed to load: " + "; ".join(broken))
    plugins = [p for p in registry.installed if p.distribution in shipped]
    return sorted(plugins, key=lambda p: (PLUGIN_ROLES.index(p.spec.role), p.spec.name))


def plugin_root(role: str, name: str) -> TablePath:
    if role == "transport":
        return TablePath("transport.<name>", plugin=name)
    if role in BACKEND_ROLES:
        return TablePath(f"backend.{role}", plugin=name)
    return TablePath(role, plugin=name)


# --------------------------------------------------------------------------------------------
# Rendering


def render(registry: PluginRegistry | None = None) -> str:
    """The whole reference as Markdown; the same code and plugins give the same text."""
    registry = load_plugins() if registry is None else registry
    out: list[str] = [_PREAMBLE.strip(), "", "## Value types", "", *_value_types(), ""]
    out += ["## Core tables", ""]
    loaded = _loaded_core_defaults(registry)
    for name, struct in core_tables():
        out += _struct_section(TablePath(name), struct, 3, getattr(loaded, name))
    out += ["## Plugin tables", "", _PLUGIN_INTRO.strip(), ""]
    role = None
    for plugin in plugin_tables(registry):
        if plugin.spec.role != role:
            role = plugin.spec.role
            out += [f"### {_ROLE_TITLES[role]}", ""]
        root = plugin_root(role, plugin.spec.name)
        out += _struct_section(
            root, plugin.spec.settings_type, 4, None, shipped_by=plugin.distribution
        )
    return "\n".join(out).rstrip() + "\n"


_PREAMBLE = """
# Configuration reference

<!-- Generated by scripts/gen_config_reference.py from the settings Structs; do not edit.
     Regenerate with: uv run python scripts/gen_config_reference.py -->

`arkrelay run --config FILE` reads one TOML file (`$ARKRELAY_CONFIG` when `--config` is not
given; the embedded defaults when neither is). Each table below is a Struct in the code, so
this page lists every key there is. A key no Struct defines, a value of the wrong type or
out of its bounds stops the gateway with one line naming the file and the dotted key.
`arkrelay config check FILE` validates a file and prints it resolved, secrets masked.

Relative paths (keys of type *path*, `file:` secrets, the default `data_dir`) are taken
relative to the directory of the config file, written `<config dir>` below. An explicit
`database` URL is used as written.
"""

_PLUGIN_INTRO = """
A plugin table names the plugin that runs it with `plugin = "..."`; its other keys are that
plugin's settings. Installing a plugin never enables it: only the tables in the file run.
`[transport.<name>]` tables may be repeated under any names; without a `plugin` key the
table's name is the plugin's (`[transport.relays]` runs the `relays` plugin).
`[backend.<role>]` (one per role: ark, lightning, assets) and `[settlement]` need
`plugin`. `arkrelay plugins` lists the plugins installed and which ones the config enables.
Below: every plugin this repository ships.
"""

_ROLE_TITLES = {
    "transport": "Transports: `[transport.<name>]`",
    "ark": "Ark backend: `[backend.ark]`",
    "lightning": "Lightning backend: `[backend.lightning]`",
    "assets": "Assets backend: `[backend.assets]`",
    "settlement": "Settlement: `[settlement]`",
}


def _value_types() -> list[str]:
    rows = [
        ("duration", f"{DURATION_SYNTAX} (`s`, `m`, `h`, `d`; no unit means seconds)"),
        ("host:port", f"{HOSTPORT_SYNTAX}"),
        (
            "secret",
            "the value itself, `env:NAME` (the environment variable, which must be set and "
            "not empty) or `file:PATH` (the file's text without its trailing newline); "
            "resolved when the config loads, never printed",
        ),
        ("path", "a file or directory; `~` is expanded, relative paths start at `<config dir>`"),
        ("table", "a TOML table, documented in its own section"),
    ]
    return ["| type | written as |", "|---|---|", *(f"| {t} | {_cell(d)} |" for t, d in rows)]


def _loaded_core_defaults(registry: PluginRegistry) -> Config:
    # Every core table present and empty, as a file in CONFIG_DIR: the defaults an operator
    # gets, including those the loader derives (data_dir, database, key_file).
    text = "".join(f"[{name}]\n" for name, _ in core_tables())
    return load_config_text(
        text, source="<reference>", settings_resolver=registry.settings_type, base_dir=CONFIG_DIR
    )


def _struct_section(
    where: TablePath,
    struct: type[msgspec.Struct],
    level: int,
    loaded: msgspec.Struct | None,
    *,
    shipped_by: str | None = None,
) -> list[str]:
    out = [f"{'#' * min(level, 6)} {where.heading()}", ""]
    if shipped_by is not None:
        out += [f"Shipped by `{shipped_by}`.", ""]
    doc = _class_doc(struct)
    if doc:
        out += [doc, ""]
    out += ["| key | type | default | description |", "|---|---|---|---|"]
    nested: list[tuple[TablePath, type[msgspec.Struct], msgspec.Struct | None]] = []
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    for field in info.fields:
        kind = _strip_none(field.type)
        key = field.encode_name
        default: Any = _default(field)
        if loaded is not None:
            default = getattr(loaded, field.name)
        if isinstance(kind, mi.StructType):
            child = where.child(key)
            nested.append((child, kind.cls, default if isinstance(default, kind.cls) else None))
            type_text = f"table, see {child.heading()}"
            default_text = "unset" if default is None else "see the table"
        elif isinstance(kind, mi.ListType) and isinstance(kind.item_type, mi.StructType):
            child = where.child(key, array=True)
            nested.append((child, kind.item_type.cls, None))
            type_text = f"array of tables, see {child.heading()}"
            default_text = _default_text(default)
        else:
            type_text = _type_text(kind)
            default_text = _default_text(default)
        description = _field_doc(struct, field.name)
        out.append(
            f"| `{key}` | {_cell(type_text)} | {_cell(default_text)} | {_cell(description)} |"
        )
    out.append("")
    for child, child_struct, child_loaded in nested:
        out += _struct_section(child, child_struct, level + 1, child_loaded)
    return out


# --------------------------------------------------------------------------------------------
# Types and defaults, in the words of the file


_CUSTOM_NAMES: dict[type, str] = {
    Duration: "duration",
    HostPort: "host:port",
    Secret: "secret",
    Path: "path",
}


def _strip_none(info: mi.Type) -> mi.Type:
    if isinstance(info, mi.UnionType):
        members = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if len(members) == 1:
            return members[0]
        return mi.UnionType(types=tuple(members))
    return info


def _type_text(info: mi.Type) -> str:
    info = _strip_none(info)
    match info:
        case mi.BoolType():
            return "boolean"
        case mi.IntType() | mi.FloatType():
            base = "integer" if isinstance(info, mi.IntType) else "number"
            bounds = [
                f"{symbol} {_number(value)}"
                for symbol, value in (
                    ("≥", info.ge),
                    (">", info.gt),
                    ("≤", info.le),
                    ("<", info.lt),
                    ("multiple of", info.multiple_of),
                )
                if value is not None
            ]
            return f"{base} ({', '.join(bounds)})" if bounds else base
        case mi.StrType():
            bounds = []
            if info.pattern is not None:
                bounds.append(f"matching `{_pattern(info.pattern)}`")
            bounds += _lengths(info.min_length, info.max_length, "characters")
            return f"string ({', '.join(bounds)})" if bounds else "string"
        case mi.LiteralType():
            return "one of " + ", ".join(f"`{_toml(v)}`" for v in info.values)
        case mi.EnumType():
            return "one of " + ", ".join(f"`{_toml(m.value)}`" for m in info.cls)
        case mi.CustomType():
            return _CUSTOM_NAMES.get(info.cls, info.cls.__name__)
        case mi.ListType() | mi.SetType() | mi.FrozenSetType() | mi.VarTupleType():
            text = f"array of {_type_text(info.item_type)}"
            lengths = _lengths(info.min_length, info.max_length, "items")
            return f"{text}, {' and '.join(lengths)}" if lengths else text
        case mi.DictType():
            return f"table of {_type_text(info.value_type)}"
        case mi.UnionType():
            return " or ".join(_type_text(t) for t in info.types)
        case mi.AnyType():
            return "any value"
        case _:
            raise TypeError(f"no words for the config type {info!r}")


def _lengths(low: int | None, high: int | None, unit: str) -> list[str]:
    out = []
    if low is not None:
        out.append(f"at least {low} {unit if low != 1 else unit.removesuffix('s')}")
    if high is not None:
        out.append(f"at most {high} {unit if high != 1 else unit.removesuffix('s')}")
    return out


def _pattern(pattern: str) -> str:
    # `(?!\n)` only stops `$` from matching before a final newline; it is noise here (and
    # written with a real newline in some patterns).
    pattern = pattern.replace("$(?!\n)", "$").replace("$(?!\\n)", "$")
    return pattern.replace("\n", "\\n")


def _number(value: float) -> str:
    return f"{value:_}" if isinstance(value, int) and abs(value) >= 1_000_000 else str(value)


def _default(field: mi.Field) -> Any:
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return msgspec.NODEFAULT


def _default_text(value: Any) -> str:
    if value is msgspec.NODEFAULT:
        return "**required**"
    if value is None:
        return "unset"
    return f"`{_toml(value)}`"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _number(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Duration | HostPort):
        return json.dumps(str(value))
    if isinstance(value, Path):
        return json.dumps(value.as_posix())
    if isinstance(value, enum.Enum):
        return _toml(value.value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Secret):
        return "(a secret)"
    raise TypeError(f"no TOML for the default {value!r}")


def _cell(text: str) -> str:
    # One line per row, and a `|` (even in a code span) would end the cell.
    return " ".join(text.split()).replace("|", "\\|")


# --------------------------------------------------------------------------------------------
# Descriptions: Struct docstrings and the `#:` comments above fields


def _rst_to_markdown(text: str) -> str:
    return text.replace("``", "`")


def _class_doc(struct: type) -> str:
    doc = struct.__dict__.get("__doc__")
    if not doc:
        return ""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(doc))
    return "\n\n".join(_rst_to_markdown(" ".join(p.split())) for p in paragraphs)


def _field_doc(struct: type, name: str) -> str:
    """The `#:` comment of ``name`` in the class of ``struct``'s MRO that declares it."""
    for klass in struct.__mro__:
        if name in inspect.get_annotations(klass):
            return _rst_to_markdown(_attribute_docs(klass).get(name, ""))
    return ""


@cache
def _attribute_docs(klass: type) -> dict[str, str]:
    """Field name -> its doc: ``#:`` lines above it, a trailing ``#:`` comment, or a string
    literal right after it (the forms Sphinx reads)."""
    lines, _ = inspect.getsourcelines(klass)
    source = textwrap.dedent("".join(lines))
    source_lines = source.splitlines()
    tree = ast.parse(source)
    class_node = tree.body[0]
    assert isinstance(class_node, ast.ClassDef)
    docs: dict[str, str] = {}
    body = class_node.body
    for index, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        comment: list[str] = []
        row = node.lineno - 2
        while row >= 0 and source_lines[row].strip().startswith("#:"):
            comment.insert(0, source_lines[row].strip()[2:].strip())
            row -= 1
        if not comment:
            _, sep, trailing = source_lines[node.lineno - 1].partition("#:")
            if sep:
                comment = [trailing.strip()]
        if not comment and index + 1 < len(body):
            after = body[index + 1]
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                comment = [inspect.cleandoc(after.value.value)]
        if comment:
            docs[node.target.id] = " ".join(" ".join(comment).split())
    return docs


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=typing.cast(str, __doc__).splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    registry = load_plugins()
    text = render(registry)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    left_out = sorted(
        f"{p.spec.role}/{p.spec.name} ({p.distribution})"
        for p in registry.installed
        if p not in plugin_tables(registry)
    )
    if left_out:
        sys.stderr.write(f"not shipped here, left out: {', '.join(left_out)}\n")
    sys.stdout.write(f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
