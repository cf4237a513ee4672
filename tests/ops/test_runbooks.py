"""docs/operators/runbooks.md against ops/prometheus/alerts.yml.

Every alert has one runbook entry, under the heading of its group, with its three parts
(meaning, first checks, fix), and links to it from its ``runbook_url`` annotation; every
entry is for an alert that exists. What the entries tell an operator to use must exist
too: each HTTP route, ``arkrelay`` command and option, metric, and each quoted log line
(a rendering of a format string in the gateway's or its plugins' code).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import yaml

from arkrelay_core.cli import cli
from arkrelay_core.http.metrics import SETTLEMENT_COUNTERS
from arkrelay_core.http.server import all_routes

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
RUNBOOK_PATH = "docs/operators/runbooks.md"
RUNBOOKS = ROOT / RUNBOOK_PATH
PARTS = ("Meaning", "First checks", "Fix")
PART_MARKER = re.compile(r"^\*\*(Meaning|First checks|Fix)\.\*\*", re.MULTILINE)
ALERT_NAME = re.compile(r"ArkRelay[A-Z][A-Za-z]+")
GROUP_NAME = re.compile(r"arkrelay-[a-z-]+")
METRIC = re.compile(r"\barkrelay_[a-z_]+\b")
ROUTE_REF = re.compile(r"`(GET|POST) (/[^`\s?]*)[^`]*`")
COMMAND_REF = re.compile(r"`arkrelay ([^`]+)`")
LOG_REF = re.compile(r"log line\s+`([^`]+)`")
PLACEHOLDER = re.compile(r"<[^<>]+>")
PRINTF = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa%]")
#: What a sample series name ends with beyond its family's name.
SAMPLE_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


# --------------------------------------------------------------------------- markdown


@dataclasses.dataclass(frozen=True)
class Heading:
    level: int
    text: str
    #: The lines up to the next heading of the same or a higher level.
    body: str


def headings(text: str) -> list[Heading]:
    """ATX headings outside fenced code blocks, each with its body."""
    lines = text.splitlines()
    found: list[tuple[int, str, int]] = []
    fenced = False
    for number, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"(#{1,6}) +(.+?)\s*#*\s*$", line)
        if match and not fenced:
            found.append((len(match.group(1)), match.group(2), number))
    result = []
    for i, (level, heading, start) in enumerate(found):
        end = next((n for lv, _, n in found[i + 1 :] if lv <= level), len(lines))
        result.append(Heading(level, heading, "\n".join(lines[start + 1 : end])))
    return result


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(found: Iterable[Heading]) -> set[str]:
    """Every heading's anchor; a repeated one gets ``-1``, ``-2``, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for heading in found:
        base = slug(heading.text)
        count = seen.get(base, 0)
        result.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return result


def parts_of(body: str) -> tuple[dict[str, str], list[str]]:
    """The text of each part (``**Meaning.**`` ...) of an entry, and their order."""
    markers = list(PART_MARKER.finditer(body))
    texts: dict[str, str] = {}
    order = []
    for i, marker in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(body)
        name = marker.group(1)
        order.append(name)
        texts[name] = body[marker.end() : end].strip()
    return texts, order


# --------------------------------------------------------------------------- the checks


def alert_rules(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(group["name"], rule) for group in document["groups"] for rule in group["rules"]]


def runbook_problems(rules: list[tuple[str, dict[str, Any]]], text: str) -> list[str]:
    """What is wrong between the alert rules and the runbook page."""
    problems: list[str] = []
    found = headings(text)
    groups = {group for group, _ in rules}
    group_of = {rule["alert"]: group for group, rule in rules}
    entries: dict[str, list[tuple[str | None, Heading]]] = {}
    current_group: str | None = None
    for heading in found:
        if heading.level <= 2:
            current_group = heading.text if GROUP_NAME.fullmatch(heading.text) else None
            if current_group is not None and current_group not in groups:
                problems.append(f"section {heading.text!r} is no alert group of alerts.yml")
        elif heading.level == 3 and (
            current_group is not None or ALERT_NAME.fullmatch(heading.text)
        ):
            entries.setdefault(heading.text, []).append((current_group, heading))

    for name, placed in entries.items():
        if name not in group_of:
            problems.append(f"runbook entry {name!r} names no alert of alerts.yml")
            continue
        if len(placed) > 1:
            problems.append(f"{name}: {len(placed)} runbook entries")
        group, heading = placed[0]
        if group != group_of[name]:
            problems.append(f"{name}: entry under {group!r}, the alert is in {group_of[name]!r}")
        texts, order = parts_of(heading.body)
        if order != list(PARTS):
            problems.append(f"{name}: parts are {order}, expected {list(PARTS)} once each")
        for part in PARTS:
            if part in texts and len(texts[part]) < 40:
                problems.append(f"{name}: the {part} part says next to nothing")
        meaning = texts.get("Meaning", "")
        for metric in sorted(set(METRIC.findall(_rule(rules, name)["expr"]))):
            if metric not in meaning:
                problems.append(f"{name}: the Meaning does not name {metric}")
        checks = texts.get("First checks", "")
        if not any(p.search(checks) for p in (ROUTE_REF, COMMAND_REF, METRIC, LOG_REF)):
            problems.append(f"{name}: the First checks name no route, command, metric or log")

    known = anchors(found)
    for _, rule in rules:
        name = rule["alert"]
        if name not in entries:
            problems.append(f"{name}: no runbook entry")
        url = rule.get("annotations", {}).get("runbook_url")
        if url is None:
            problems.append(f"{name}: no runbook_url annotation")
            continue
        path, _, anchor = url.partition("#")
        if path != RUNBOOK_PATH:
            problems.append(f"{name}: runbook_url {url!r} is not {RUNBOOK_PATH}#...")
        if anchor not in known:
            problems.append(f"{name}: runbook_url anchor #{anchor} is no heading of the runbook")
        elif anchor != slug(name):
            problems.append(f"{name}: runbook_url points at #{anchor}, not its own entry")
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        if link not in known:
            problems.append(f"link #{link} is no heading of the runbook")
    return problems


def _rule(rules: list[tuple[str, dict[str, Any]]], name: str) -> dict[str, Any]:
    return next(rule for _, rule in rules if rule["alert"] == name)


def route_problems(text: str, routes: Iterable[tuple[str, str]]) -> list[str]:
    """Routes the page names (``GET /path``) that the HTTP API does not serve."""
    patterns = []
    for method, path in routes:
        pieces = re.split(r"\{\w+\}", path)
        patterns.append((method, re.compile("[^/]+".join(re.escape(p) for p in pieces))))
    problems = []
    for match in ROUTE_REF.finditer(text):
        method, path = match.groups()
        if not any(m == method and p.fullmatch(path) for m, p in patterns):
            problems.append(f"no route {method} {path}")
    return problems


def command_problems(text: str, root: click.Command) -> list[str]:
    """``arkrelay ...`` commands and options the page names that the CLI does not have."""
    problems = []
    for match in COMMAND_REF.finditer(text):
        problem = _resolve(root, match.group(1).split())
        if problem is not None:
            problems.append(f"`arkrelay {match.group(1)}`: {problem}")
    return problems


def _resolve(root: click.Command, words: list[str]) -> str | None:
    command, ctx = root, click.Context(root)
    at = 0
    while at < len(words):
        word = words[at]
        if word.startswith("-"):
            flag = word.split("=")[0]
            option = next(
                (
                    p
                    for p in command.params
                    if isinstance(p, click.Option) and flag in (*p.opts, *p.secondary_opts)
                ),
                None,
            )
            if option is None:
                return f"{command.name} has no option {flag}"
            if not option.is_flag and "=" not in word:
                at += 1  # its value
        elif isinstance(command, click.Group):
            found = command.get_command(ctx, word)
            if found is None:
                return f"{command.name} has no command {word!r}"
            command = found
        at += 1
    return None


def metric_problems(text: str, exposed: set[str], not_metrics: set[str]) -> list[str]:
    """``arkrelay_*`` names on the page that are no metric the gateway exposes."""
    problems = []
    for name in sorted(set(METRIC.findall(text)) - not_metrics):
        family = name
        for suffix in SAMPLE_SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in exposed:
                family = name.removesuffix(suffix)
        if family not in exposed:
            problems.append(f"no metric {name}")
    return problems


def log_problems(text: str, formats: Iterable[str]) -> list[str]:
    """Quoted log lines (``log line `...```, ``<...>`` for values) that no format string
    of the code can produce."""
    patterns = [_format_pattern(f) for f in formats]
    problems = []
    for match in LOG_REF.finditer(text):
        quoted = " ".join(match.group(1).split())
        sample = PLACEHOLDER.sub("X", quoted)
        if not any(p.fullmatch(sample) for p in patterns):
            problems.append(f"no log format gives `{quoted}`")
    return problems


def _format_pattern(literal: str) -> re.Pattern[str]:
    pieces = []
    last = 0
    for directive in PRINTF.finditer(literal):
        pieces.append(re.escape(literal[last : directive.start()]))
        pieces.append("%" if directive.group() == "%%" else "(.+)")
        last = directive.end()
    pieces.append(re.escape(literal[last:]))
    return re.compile("".join(pieces), re.DOTALL)


# --------------------------------------------------------------------------- what exists


def source_files() -> Iterator[Path]:
    """The gateway's and its plugins' code (not their tests, not generated stubs)."""
    for base in [ROOT / "arkrelay_core", *sorted((ROOT / "plugins").glob("*/arkrelay_*"))]:
        for path in sorted(base.rglob("*.py")):
            if "_proto" not in path.parts:
                yield path


@functools.cache
def string_literals() -> tuple[str, ...]:
    """Every string constant of the code: log calls pass their format strings as these."""
    found = set()
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return tuple(sorted(found))


def exposed_metrics() -> set[str]:
    """Metric family names defined by the /metrics collector and the ceremony observer."""
    http = ROOT / "arkrelay_core" / "http"
    names = set()
    for path in (http / "metrics.py", http / "observe.py"):
        names |= set(re.findall(r'"(arkrelay_[a-z_]+)"', path.read_text()))
    names |= {f"arkrelay_settlement_{key}" for key in SETTLEMENT_COUNTERS}
    return names


def module_names() -> set[str]:
    """``arkrelay_*`` names that are packages, not metrics."""
    packages = {"arkrelay_core", "arkrelay_wallet"}
    return packages | {p.name for p in (ROOT / "plugins").glob("*/arkrelay_*")}


def load_rules() -> list[tuple[str, dict[str, Any]]]:
    return alert_rules(yaml.safe_load(ALERTS.read_text()))


# --------------------------------------------------------------------------- tests


def test_every_alert_has_its_runbook_entry_and_link() -> None:
    rules = load_rules()
    assert len(rules) >= 10
    assert runbook_problems(rules, RUNBOOKS.read_text()) == []


def test_the_runbooks_name_only_routes_the_api_serves() -> None:
    routes = [(r.method, r.path) for r in all_routes()]
    text = RUNBOOKS.read_text()
    assert len(ROUTE_REF.findall(text)) >= 10
    assert route_problems(text, routes) == []


def test_the_runbooks_name_only_real_commands_and_options() -> None:
    text = RUNBOOKS.read_text()
    assert len(COMMAND_REF.findall(text)) >= 3
    assert command_problems(text, cli) == []


def test_the_runbooks_name_only_exposed_metrics() -> None:
    text = RUNBOOKS.read_text()
    assert metric_problems(text, exposed_metrics(), module_names()) == []


def test_the_quoted_log_lines_are_written_by_the_code() -> None:
    text = RUNBOOKS.read_text()
    assert len(LOG_REF.findall(text)) >= 10
    assert log_problems(text, string_literals()) == []


def test_the_checks_catch_a_broken_runbook() -> None:
    """Each check reports what it exists for (so the tests above can fail)."""
    rules = [
        ("arkrelay-one", {"alert": "ArkRelayA", "expr": "arkrelay_x == 0", "annotations": {}}),
        (
            "arkrelay-one",
            {
                "alert": "ArkRelayB",
                "expr": "arkrelay_y > 1",
                "annotations": {"runbook_url": f"{RUNBOOK_PATH}#nowhere"},
            },
        ),
        (
            "arkrelay-two",
            {
                "alert": "ArkRelayC",
                "expr": "arkrelay_z > 1",
                "annotations": {"runbook_url": f"{RUNBOOK_PATH}#arkrelaya"},
            },
        ),
    ]
    text = (
        "## arkrelay-one\n\n### ArkRelayA\n\n"
        "**Meaning.** Something is wrong, and this sentence names no metric at all.\n\n"
        "**Fix.** Make it right again, whatever it takes, and see [elsewhere](#gone).\n\n"
        "### ArkRelayC\n\n**Meaning.** x\n\n"
        "## arkrelay-three\n\n### ArkRelayGone\n\nRemoved long ago.\n"
    )
    problems = "\n".join(runbook_problems(rules, text))
    for expected in (
        "ArkRelayA: parts are ['Meaning', 'Fix']",
        "ArkRelayA: the Meaning does not name arkrelay_x",
        "ArkRelayA: no runbook_url annotation",
        "ArkRelayB: no runbook entry",
        "ArkRelayB: runbook_url anchor #nowhere is no heading",
        "ArkRelayC: entry under 'arkrelay-one', the alert is in 'arkrelay-two'",
        "ArkRelayC: the Meaning part says next to nothing",
        "ArkRelayC: runbook_url points at #arkrelaya, not its own entry",
        "section 'arkrelay-three' is no alert group",
        "runbook entry 'ArkRelayGone' names no alert",
        "link #gone is no heading",
    ):
        assert expected in problems, problems

    refs = (
        "`GET /admin/nothing` `GET /sessions/sess_1` `arkrelay db explode` "
        "`arkrelay db current --verbose` `arkrelay --log-level debug run --check` "
        "`arkrelay_no_such_metric` `arkrelay_failures_total` "
        "log line `nothing like this is logged` log line `relay <url>: connected`"
    )
    assert route_problems(refs, [("GET", "/sessions/{session_id}")]) == [
        "no route GET /admin/nothing"
    ]
    assert command_problems(refs, cli) == [
        "`arkrelay db explode`: db has no command 'explode'",
        "`arkrelay db current --verbose`: current has no option --verbose",
    ]
    assert metric_problems(refs, exposed_metrics(), module_names()) == [
        "no metric arkrelay_no_such_metric"
    ]
    assert log_problems(refs, string_literals()) == [
        "no log format gives `nothing like this is logged`"
    ]


def test_anchors_are_githubs() -> None:
    found = headings("# A runbook\n```\n# not a heading\n```\n## arkrelay-x\n### Two Words!\n")
    assert [h.text for h in found] == ["A runbook", "arkrelay-x", "Two Words!"]
    assert anchors([*found, Heading(3, "Two Words", "")]) == {
        "a-runbook",
        "arkrelay-x",
        "two-words",
        "two-words-1",
    }
