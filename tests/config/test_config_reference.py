"""docs/operators/configuration.md is what scripts/gen_config_reference.py writes from the
code today, and it names every key of every settings Struct, core and shipped plugins."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import msgspec
import pytest

from arkrelay_core.plugins import load_plugins

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "operators" / "configuration.md"


@pytest.fixture(scope="module")
def generator() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location(
        "gen_config_reference", ROOT / "scripts" / "gen_config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the script is executed.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


@pytest.fixture(scope="module")
def text(generator: ModuleType) -> str:
    return generator.render(load_plugins())


def test_the_checked_in_reference_is_current(text: str) -> None:
    assert DOC.read_text(encoding="utf-8") == text, (
        "docs/operators/configuration.md is out of date: "
        "run uv run python scripts/gen_config_reference.py"
    )


def test_rendering_is_deterministic(generator: ModuleType, text: str) -> None:
    assert generator.render(load_plugins()) == text


def _sections(text: str) -> dict[str, str]:
    """Heading text (without the #s) -> the text up to the next heading."""
    sections: dict[str, str] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            assert heading not in sections, f"two sections {heading}"
            sections[heading] = ""
        elif heading:
            sections[heading] += line + "\n"
    return sections


def _struct_field(info: msgspec.inspect.Type) -> tuple[type | None, bool]:
    """The Struct a field holds (directly, optionally, or as an array), and whether an array."""
    if isinstance(info, msgspec.inspect.UnionType):
        structs = [t for t in info.types if isinstance(t, msgspec.inspect.StructType)]
        return (structs[0].cls, False) if structs else (None, False)
    if isinstance(info, msgspec.inspect.StructType):
        return info.cls, False
    if isinstance(info, msgspec.inspect.ListType) and isinstance(
        info.item_type, msgspec.inspect.StructType
    ):
        return info.item_type.cls, True
    return None, False


def _expected(
    path: str, struct: type, plugin: str | None, array: bool = False
) -> Iterator[tuple[str, str]]:
    """(section heading, key) for every key of ``struct`` and of its sub-tables."""
    heading = f"`[[{path}]]`" if array else f"`[{path}]`"
    if plugin is not None:
        heading += f' (`plugin = "{plugin}"`)'
    for field in msgspec.structs.fields(struct):
        yield heading, field.encode_name
        child, child_array = _struct_field(msgspec.inspect.type_info(field.type))
        if child is not None:
            yield from _expected(f"{path}.{field.encode_name}", child, plugin, child_array)


def _every_key(generator: ModuleType) -> list[tuple[str, str]]:
    """Walked here from the Structs, independently of how the generator walks them."""
    keys = []
    for name, struct in generator.core_tables():
        keys += _expected(name, struct, None)
    for plugin in generator.plugin_tables(load_plugins()):
        root = generator.plugin_root(plugin.spec.role, plugin.spec.name).path
        keys += _expected(root, plugin.spec.settings_type, plugin.spec.name)
    return keys


def _documented(text: str) -> set[tuple[str, str]]:
    return {
        (heading, line.split("`")[1])
        for heading, body in _sections(text).items()
        for line in body.splitlines()
        if line.startswith("| `")
    }


def test_every_key_of_every_settings_struct_is_documented(generator: ModuleType, text: str) -> None:
    keys = _every_key(generator)
    missing = set(keys) - _documented(text)
    assert not missing, sorted(missing)
    # The walk reached what this repository ships, nested tables included.
    headings = {heading for heading, _ in keys}
    assert {"`[gateway]`", "`[[ceremony.assets]]`", "`[ceremony.fees]`"} <= headings
    assert '`[backend.ark.inventory]` (`plugin = "arkd"`)' in headings
    for name in ("relays", "endpoint", "arkd", "lnd", "tapd", "anchor", "ark-batches"):
        assert any(h.endswith(f'(`plugin = "{name}"`)') for h in headings), name


def test_no_key_is_documented_that_the_code_lacks(generator: ModuleType, text: str) -> None:
    assert _documented(text) == set(_every_key(generator))


def test_descriptions_come_from_the_field_comments(text: str) -> None:
    # A `#:` comment in the core, one inherited from CallPolicy, one nested in a plugin.
    assert '| `lease_ttl` | duration | `"30s"` | A lease not renewed for this long' in text
    assert '| `call_timeout` | duration | `"10s"` | Deadline of every unary call. |' in text
    assert '| `block_interval` | duration | `"0s"` | Mine a block this often' in text


def test_types_and_defaults_read_as_toml(text: str) -> None:
    assert "| `concurrency` | integer (≥ 1, ≤ 256) | `16` |" in text
    assert '| `network` | one of `"mainnet"`, ' in text
    assert "| `admin_key` | secret | unset |" in text
    assert (
        "| `relays` | array of string (matching `^wss?://[^\\s]+$`), at least 1 item "
        "| **required** |"
    ) in text
    # The loader's derived defaults, not the Struct's placeholders.
    assert '| `key_file` | path | `"<config dir>/.arkrelay/gateway.key"` |' in text
