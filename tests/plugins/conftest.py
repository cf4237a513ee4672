import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DISTS = Path(__file__).parent / "dists"
ARKRELAY = Path(sys.executable).parent / "arkrelay"


def _install(target: Path, *dists: str) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to install the test plugins")
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", sys.executable, "--target", str(target),
         "--no-deps", *(str(DISTS / d) for d in dists)],
        check=True,
        timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """A throwaway site directory holding the two test plugin distributions, installed."""
    target = tmp_path_factory.mktemp("site")
    _install(target, "arkrelay-testplug", "arkrelay-brokenplug")
    return target


@pytest.fixture(scope="session")
def good_site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("good-site")
    _install(target, "arkrelay-testplug")
    return target


@pytest.fixture
def arkrelay(tmp_path):
    """Run the real `arkrelay` command with an extra site directory, in a scratch cwd."""

    def run(*args: str, site: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARKRELAY_")}
        if site is not None:
            env["PYTHONPATH"] = str(site)
        return subprocess.run(
            [str(ARKRELAY), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run
