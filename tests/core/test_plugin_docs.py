"""Every hook spec is documented in docs/plugins.md and exercised by a test.

Documented: docs/plugins.md has one ``### <hook>`` section whose ``**Arguments:**`` line
names each of the spec's parameters (or says none), with a Python example implementing
the hook with ``@hookimpl`` and the spec's parameters. Exercised: the test tree (tests/,
plugins/*/tests/, contract-tests/) implements the hook with ``@hookimpl`` or calls it
through a plugin manager's ``hook``, and the core calls it, so that a test's
implementation is reached. Both are read from syntax trees, not from running anything: a
new hook spec with no section, no test or no call site fails here.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

from arkrelay_core import hookspecs
from arkrelay_core.plugins import create_plugin_manager

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"
SPEC_MARK = f"{hookspecs.PROJECT_NAME}_spec"
ARGUMENTS = re.compile(r"\*\*Arguments:\*\*(.*?)(?:\*\*Returns:\*\*|\.\s|\n\n|$)", re.DOTALL)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def hook_specs(module: ModuleType) -> dict[str, list[str]]:
    """Each hook spec of ``module`` with its parameter names."""
    return {
        name: list(inspect.signature(function).parameters)
        for name, function in vars(module).items()
        if callable(function) and hasattr(function, SPEC_MARK)
    }


SPECS = hook_specs(hookspecs)


# --------------------------------------------------------------------------- the doc


def level3_sections(text: str) -> dict[str, list[str]]:
    """``### heading`` -> its bodies (up to the next heading of level 1 to 3), outside
    fenced code."""
    lines = text.splitlines()
    starts: list[tuple[int, str, int]] = []
    fenced = False
    for number, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"(#{1,3}) +(.+?)\s*$", line)):
            starts.append((len(match.group(1)), match.group(2), number))
    found: dict[str, list[str]] = {}
    for i, (level, heading, start) in enumerate(starts):
        if level != 3:
            continue
        end = starts[i + 1][2] if i + 1 < len(starts) else len(lines)
        found.setdefault(heading, []).append("\n".join(lines[start + 1 : end]))
    return found


def doc_problems(specs: dict[str, list[str]], text: str) -> list[str]:
    """What docs/plugins.md lacks for ``specs``, and its sections for hooks that are gone."""
    sections = level3_sections(text)
    problems = []
    for name, params in specs.items():
        bodies = sections.get(name, [])
        if len(bodies) != 1:
            problems.append(f"{name}: {len(bodies)} sections `### {name}`, expected 1")
            continue
        problems += [f"{name}: {p}" for p in _section_problems(name, params, bodies[0])]
    for heading in sections:
        if heading.startswith("arkrelay_") and heading not in specs:
            problems.append(f"section `### {heading}` documents no hook spec")
    return problems


def _section_problems(name: str, params: list[str], body: str) -> Iterator[str]:
    arguments = ARGUMENTS.search(body)
    if arguments is None:
        yield "no **Arguments:** line"
    elif not params and not arguments.group(1).strip().lower().startswith("none"):
        yield "takes no arguments, but **Arguments:** does not say none"
    else:
        for param in params:
            if f"`{param}`" not in arguments.group(1):
                yield f"**Arguments:** does not name `{param}`"
    examples = [
        node
        for block in PYTHON_BLOCK.findall(body)
        for node in ast.walk(ast.parse(block))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
    ]
    if not examples:
        yield "no ```python example defining it"
        return
    example = examples[0]
    if not any(_is_hookimpl(d) for d in example.decorator_list):
        yield "the example is not decorated with @hookimpl"
    taken = [a.arg for a in example.args.args if a.arg != "self"]
    if taken != params:
        yield f"the example takes {taken}, the spec {params}"


# --------------------------------------------------------------------------- the code


def _is_hookimpl(decorator: ast.expr) -> bool:
    if isinstance(decorator, ast.Call):
        decorator = decorator.func
    return (isinstance(decorator, ast.Name) and decorator.id == "hookimpl") or (
        isinstance(decorator, ast.Attribute) and decorator.attr == "hookimpl"
    )


def suite_files() -> Iterator[Path]:
    """The Python files of the test suites (the node packages' files excluded)."""
    bases = [ROOT / "tests", *sorted((ROOT / "plugins").glob("*/tests")), ROOT / "contract-tests"]
    for base in bases:
        for path in sorted(base.rglob("*.py")):
            if "node_modules" not in path.parts and path != Path(__file__).resolve():
                yield path


def core_files() -> Iterator[Path]:
    for path in sorted((ROOT / "arkrelay_core").rglob("*.py")):
        if path.name != "hookspecs.py":
            yield path


def exercising(paths: Iterable[Path]) -> dict[str, list[str]]:
    """Hook name -> where a test implements it (``@hookimpl def <hook>``) or calls it
    (``<manager>.hook.<hook>(...)``)."""
    found: dict[str, list[str]] = {}
    for path in paths:
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(), where)):
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.name.startswith("arkrelay_")
                and any(_is_hookimpl(d) for d in node.decorator_list)
            ):
                found.setdefault(node.name, []).append(f"{where}:{node.lineno} implements")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "hook"
                and node.func.attr.startswith("arkrelay_")
            ):
                found.setdefault(node.func.attr, []).append(f"{where}:{node.lineno} calls")
    return found


def called_by(paths: Iterable[Path]) -> set[str]:
    """Hook names the code reaches: ``<...>.hook.<name>`` or the name as a string (the
    plugin host looks the registration hooks up by name)."""
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr.startswith("arkrelay_"):
                found.add(node.attr)
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"arkrelay_[a-z_]+", node.value)
            ):
                found.add(node.value)
    return found


@functools.cache
def exercised_by_tests() -> dict[str, list[str]]:
    return exercising(suite_files())


# --------------------------------------------------------------------------- tests


def test_the_specs_are_the_plugin_managers_hooks() -> None:
    manager = create_plugin_manager()
    assert set(SPECS) == {n for n in dir(manager.hook) if n.startswith("arkrelay_")}
    assert len(SPECS) >= 10


def test_every_hook_is_documented_with_its_arguments_and_an_example() -> None:
    assert doc_problems(SPECS, DOC.read_text()) == []


def test_every_hook_is_implemented_or_called_by_a_test() -> None:
    uses = exercised_by_tests()
    assert sorted(name for name in SPECS if name not in uses) == []


def test_the_core_calls_every_hook() -> None:
    calls = called_by(core_files())
    assert sorted(name for name in SPECS if name not in calls) == []


def test_a_new_hook_without_docs_or_tests_is_reported() -> None:
    """What the checks above would say the day a spec is added and nothing else."""
    specs = {**SPECS, "arkrelay_settlement_published": ["settlement"]}
    assert doc_problems(specs, DOC.read_text()) == [
        "arkrelay_settlement_published: 0 sections `### arkrelay_settlement_published`, expected 1"
    ]
    uses = exercised_by_tests()
    assert [name for name in specs if name not in uses] == ["arkrelay_settlement_published"]
    assert "arkrelay_settlement_published" not in called_by(core_files())


def test_a_section_missing_its_parts_is_reported() -> None:
    text = "\n".join(
        [
            "### arkrelay_thing_happened",
            "",
            "**Arguments:** `thing`. Something happened.",
            "",
            "```python",
            "def arkrelay_thing_happened(thing, when):",
            "    pass",
            "```",
            "",
            "### arkrelay_other",
            "",
            "An old hook.",
            "",
            "### arkrelay_quiet",
            "",
            "Nothing to say.",
        ]
    )
    specs = {"arkrelay_thing_happened": ["thing", "extra"], "arkrelay_quiet": []}
    assert doc_problems(specs, text) == [
        "arkrelay_thing_happened: **Arguments:** does not name `extra`",
        "arkrelay_thing_happened: the example is not decorated with @hookimpl",
        "arkrelay_thing_happened: the example takes ['thing', 'when'], the spec ['thing', 'extra']",
        "arkrelay_quiet: no **Arguments:** line",
        "arkrelay_quiet: no ```python example defining it",
        "section `### arkrelay_other` documents no hook spec",
    ]


def test_implementations_and_calls_are_found() -> None:
    uses = exercised_by_tests()
    # The observer tests implement these; the sim-commands test calls its hook directly.
    assert any("test_observers.py" in u for u in uses["arkrelay_session_transition"])
    assert any(u.endswith("calls") for u in uses["arkrelay_register_sim_commands"])
    # A test implementing a hook that has no spec any more tests nothing.
    assert sorted(set(uses) - set(SPECS)) == []
