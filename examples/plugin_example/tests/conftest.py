"""Finds ArkRelay's contract suites.

They ship with ArkRelay's source, not in the arkrelay-core wheel: point
``ARKRELAY_CONTRACT_TESTS`` at the ``contract-tests`` directory of an arkrelay checkout of
the core version you depend on. Inside the arkrelay repository the checkout around this
example is used when the variable is unset.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_IN_REPOSITORY = Path(__file__).resolve().parents[3] / "contract-tests"


def pytest_configure(config: pytest.Config) -> None:
    given = os.environ.get("ARKRELAY_CONTRACT_TESTS")
    suites = Path(given) if given else _IN_REPOSITORY
    if not (suites / "assets.py").is_file():
        raise pytest.UsageError(
            f"no ArkRelay contract suites in {suites}: set ARKRELAY_CONTRACT_TESTS to the "
            "contract-tests directory of an arkrelay checkout"
        )
    sys.path.insert(0, str(suites))
