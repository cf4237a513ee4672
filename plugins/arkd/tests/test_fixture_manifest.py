"""arkd's fixtures are copied unchanged, listed, and each run by a test that names it.

data/arkd-v0.9.15/README.md lists every copied file with its upstream path at arkd v0.9.15
and its SHA-256; this test holds the directory, the list and the test modules together.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE / "data" / "arkd-v0.9.15"
ROW = re.compile(r"^\| `([^`]+)` \| `([^`]+)` \| `([0-9a-f]{64})` \| `([^`]+)` \|$")


def _manifest() -> list[tuple[str, str, str, str]]:
    rows = [ROW.match(line) for line in (DATA / "README.md").read_text().splitlines()]
    return [m.groups() for m in rows if m]  # type: ignore[misc]


def test_every_copied_file_is_listed_and_unchanged() -> None:
    listed = {name: sha for name, _, sha, _ in _manifest()}
    present = {p.name for p in DATA.iterdir() if p.suffix == ".json"}
    assert set(listed) == present
    for name, sha in listed.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == sha, name


def test_each_file_is_run_by_a_test_that_names_its_upstream_path() -> None:
    for name, upstream, _, module in _manifest():
        text = (HERE / module).read_text()
        docstring = text.split('"""')[1]
        assert upstream in docstring, f"{module} does not name {upstream}"
        assert name in text, f"{module} does not load {name}"
