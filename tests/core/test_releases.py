"""Every distribution of the repository (the workspace's and the example plugin) has a
CHANGELOG.md in the form RELEASING.md describes, whose newest version is the one in its
pyproject.toml, and versions that are semantic versions."""

from __future__ import annotations

import datetime
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Distributions outside the uv workspace that are released all the same.
OUTSIDE_WORKSPACE = ("examples/plugin_example",)

# semver.org 2.0.0's regular expression.
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
HEADING = re.compile(r"(?P<version>\S+) \((?P<date>unreleased|\d{4}-\d{2}-\d{2})\)")


def _distributions() -> list[Path]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = [ROOT]
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        found += sorted(p for p in ROOT.glob(pattern) if (p / "pyproject.toml").is_file())
    return found + [ROOT / p for p in OUTSIDE_WORKSPACE]


def _project(directory: Path) -> tuple[str, str]:
    project = tomllib.loads((directory / "pyproject.toml").read_text())["project"]
    return project["name"], project["version"]


def version_problem(version: str) -> str | None:
    """Why ``version`` is not a release version RELEASING.md allows, or None."""
    match = SEMVER.fullmatch(version)
    if match is None:
        return f"{version!r} is not a semantic version"
    if match[4] is not None or match[5] is not None:
        # PyPI would respell 1.0.0-rc.1 as 1.0.0rc1: tag, wheel and changelog would differ.
        return f"{version!r}: releases are MAJOR.MINOR.PATCH, without pre-release or build"
    return None


def changelog_problems(name: str, version: str, text: str) -> list[str]:
    """What is wrong with a changelog of distribution ``name`` at ``version``."""
    problems = []
    lines = text.splitlines()
    if not lines or lines[0] != f"# Changelog: {name}":
        problems.append(f"the first line must be '# Changelog: {name}'")
    sections: list[tuple[str, list[str]]] = []
    for line in lines[1:]:
        if line.startswith("## "):
            sections.append((line[3:], []))
        elif sections:
            sections[-1][1].append(line)
    for title, body in sections:
        if not any(line.startswith("- ") for line in body):
            problems.append(f"section {title!r} has no entries")
    if sections and sections[0][0] == "Unreleased":
        sections = sections[1:]
    if not sections:
        return [*problems, "no versioned section"]
    previous: tuple[tuple[int, ...], str] | None = None
    for index, (title, _) in enumerate(sections):
        heading = HEADING.fullmatch(title)
        if heading is None:
            problems.append(f"heading {title!r} is not '<version> (<YYYY-MM-DD>|unreleased)'")
            continue
        problem = version_problem(heading["version"])
        if problem is not None:
            problems.append(problem)
            continue
        if heading["date"] == "unreleased":
            if index > 0:
                problems.append(f"{heading['version']} is unreleased but newer versions are not")
        else:
            try:
                datetime.date.fromisoformat(heading["date"])
            except ValueError:
                problems.append(f"{title!r}: {heading['date']} is not a date")
        key = (tuple(int(part) for part in heading["version"].split(".")), heading["date"])
        if previous is not None and (key[0] >= previous[0] or key[1] > previous[1]):
            problems.append(f"{title!r} is not older than the section above it")
        previous = key
    newest = HEADING.fullmatch(sections[0][0])
    if newest is not None and newest["version"] != version:
        problems.append(f"the newest version is {newest['version']}, pyproject.toml says {version}")
    return problems


def test_every_workspace_member_is_checked() -> None:
    names = {_project(d)[0] for d in _distributions()}
    assert {
        "arkrelay-core",
        "arkrelay-nostr",
        "arkrelay-arkd",
        "arkrelay-lnd",
        "arkrelay-tapd",
        "arkrelay-settlement",
        "arkrelay-wallet",
        "arkrelay-example-assets",
    } <= names


@pytest.mark.parametrize("directory", _distributions(), ids=lambda d: _project(d)[0])
def test_changelog_matches_pyproject(directory: Path) -> None:
    name, version = _project(directory)
    assert version_problem(version) is None
    changelog = directory / "CHANGELOG.md"
    assert changelog.is_file(), f"{name} has no CHANGELOG.md"
    assert changelog_problems(name, version, changelog.read_text()) == []


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ("0.1.0", None),
        ("10.20.30", None),
        ("1.0", "'1.0' is not a semantic version"),
        ("01.0.0", "'01.0.0' is not a semantic version"),
        ("1.0.0rc1", "'1.0.0rc1' is not a semantic version"),
        (
            "1.0.0-rc.1",
            "'1.0.0-rc.1': releases are MAJOR.MINOR.PATCH, without pre-release or build",
        ),
        (
            "1.0.0+local",
            "'1.0.0+local': releases are MAJOR.MINOR.PATCH, without pre-release or build",
        ),
    ],
)
def test_version_rules(version: str, problem: str | None) -> None:
    assert version_problem(version) == problem


GOOD = """\
# Changelog: arkrelay-x

## Unreleased
- next

## 0.2.0 (unreleased)
- two

## 0.1.1 (2026-11-30)
- one and a bit

## 0.1.0 (2026-11-28)
- one
"""


def test_a_well_formed_changelog_passes() -> None:
    assert changelog_problems("arkrelay-x", "0.2.0", GOOD) == []


@pytest.mark.parametrize(
    ("name", "version", "text", "problem"),
    [
        ("arkrelay-y", "0.2.0", GOOD, "the first line must be '# Changelog: arkrelay-y'"),
        ("arkrelay-x", "0.3.0", GOOD, "the newest version is 0.2.0, pyproject.toml says 0.3.0"),
        (
            "arkrelay-x",
            "0.2.0",
            GOOD.replace("0.1.1 (2026-11-30)", "0.1.1 (unreleased)"),
            "0.1.1 is unreleased but newer versions are not",
        ),
        (
            "arkrelay-x",
            "0.2.0",
            GOOD.replace("0.1.1", "0.3.1"),
            "'0.3.1 (2026-11-30)' is not older than the section above it",
        ),
        (
            "arkrelay-x",
            "0.2.0",
            GOOD.replace("2026-11-28", "2026-12-01"),
            "'0.1.0 (2026-12-01)' is not older than the section above it",
        ),
        (
            "arkrelay-x",
            "0.2.0",
            GOOD.replace("- two\n", ""),
            "section '0.2.0 (unreleased)' has no entries",
        ),
        (
            "arkrelay-x",
            "0.2.0",
            GOOD.replace("## 0.2.0 (unreleased)", "## v0.2.0"),
            "heading 'v0.2.0' is not '<version> (<YYYY-MM-DD>|unreleased)'",
        ),
        (
            "arkrelay-x",
            "0.1.0",
            "# Changelog: arkrelay-x\n\n## Unreleased\n- a\n",
            "no versioned section",
        ),
    ],
)
def test_a_changelog_problem_is_named(name: str, version: str, text: str, problem: str) -> None:
    assert problem in changelog_problems(name, version, text)
