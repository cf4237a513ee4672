"""``arkrelay_core`` never imports a plugin or the wallet: plugins depend on the core, never
the other way round, and what the core needs from them comes through hooks and the
interfaces' Protocols. Read from the syntax tree of every module, so an import inside a
function (where a lazy import would hide) counts too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "arkrelay_core"
ALLOWED = "arkrelay_core"


def workspace_packages() -> set[str]:
    """The import names of the plugins and the wallet in this workspace."""
    found = {p.name for p in (ROOT / "plugins").glob("*/arkrelay_*") if p.is_dir()}
    found |= {p.name for p in (ROOT / "wallet").glob("arkrelay_*") if p.is_dir()}
    return found


def imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for each absolute import, and each ``import_module("...")`` or
    ``__import__("...")`` of a constant name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif (
            isinstance(node, ast.Call)
            and _called(node.func) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _called(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def forbidden(source: str, where: str) -> list[str]:
    """Imports of an ``arkrelay_*`` package other than the core itself."""
    return [
        f"{where}:{line} imports {module}"
        for line, module in imported(ast.parse(source, where))
        if module.split(".")[0].startswith("arkrelay_") and module.split(".")[0] != ALLOWED
    ]


def test_the_core_imports_no_plugin_and_not_the_wallet() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 50
    problems = [
        problem
        for path in modules
        for problem in forbidden(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert problems == []


def test_every_workspace_plugin_and_the_wallet_would_be_caught() -> None:
    packages = workspace_packages()
    assert {"arkrelay_arkd", "arkrelay_nostr", "arkrelay_wallet"} <= packages
    for package in sorted(packages):
        source = "\n".join(
            [
                "import os",
                f"import {package}.plugin",
                "def later():",
                f"    from {package} import x",
                f"    importlib.import_module('{package}.sim')",
                "from . import hookspecs",
                "from arkrelay_core.plugins import hookimpl",
            ]
        )
        assert forbidden(source, "m.py") == [
            f"m.py:2 imports {package}.plugin",
            f"m.py:4 imports {package}",
            f"m.py:5 imports {package}.sim",
        ]
