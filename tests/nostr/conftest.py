"""Fixtures for the Nostr primitive tests, and the gate for the node interop tests.

Tests marked ``@pytest.mark.node`` drive nostr-tools through the scripts in
``tests/interop``. Without node or without ``npm ci --prefix tests/interop`` they are
skipped, unless ``ARKRELAY_REQUIRE_NODE=1`` (set in CI), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import need_node

TESTS_DIR = Path(__file__).resolve().parents[1]
INTEROP_DIR = TESTS_DIR / "interop"
NIP44_VECTORS = TESTS_DIR / "data" / "nip44.vectors.json"
NODE_TIMEOUT_S = 60


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("node") is not None:
        need_node(INTEROP_DIR, ["nostr-tools"])


class NostrTools:
    """Runs the interop scripts; each call is one node process handling a batch of cases."""

    def results(self, script: str, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        proc = subprocess.run(
            ["node", str(INTEROP_DIR / script)],
            input=json.dumps({"cases": cases}).encode(),
            capture_output=True,
            timeout=NODE_TIMEOUT_S,
            cwd=INTEROP_DIR,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"{script} exited with {proc.returncode}:\n{proc.stderr.decode()}")
        results = json.loads(proc.stdout)["results"]
        assert len(results) == len(cases)
        return results

    def ok(self, script: str, cases: list[dict[str, Any]]) -> list[Any]:
        """Return each case's value, failing the test if nostr-tools threw on any of them."""
        values = []
        for case, result in zip(cases, self.results(script, cases), strict=True):
            assert "ok" in result, f"nostr-tools rejected {case!r}: {result.get('error')}"
            values.append(result["ok"])
        return values


@pytest.fixture(scope="session")
def nostr_tools() -> NostrTools:
    return NostrTools()


@pytest.fixture(scope="session")
def nip44_vectors() -> dict[str, Any]:
    return json.loads(NIP44_VECTORS.read_text(encoding="utf-8"))["v2"]
