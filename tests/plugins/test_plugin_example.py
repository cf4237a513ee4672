"""The example third-party plugin (``examples/plugin_example``), installed as an outsider
installs it: a fresh environment holding only arkrelay-core (built from this checkout as a
wheel), the example and pytest. There it must pass the AssetBackend contract suite and its
own tests, be listed by ``arkrelay plugins`` with its version, and run in a gateway."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin_example"
DIST = "arkrelay-example-assets"
#: The checks that pay over Lightning; the example declares no asset channels.
CHANNEL_CHECKS = {"asset_invoice_paid", "pay_asset_invoice"}


def _example_version() -> str:
    return tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["version"]


def _environ(scratch: Path) -> dict[str, str]:
    # Nothing of the workspace's environment leaks in (its venv, its plugins, ARKRELAY_*
    # settings); bytecode goes to scratch so the checkout stays clean.
    dropped = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_COMPILE_BYTECODE"}
    env = {
        k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("ARKRELAY_")
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    return env


def _run(
    args: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _locked_versions(target: Path) -> Path:
    """A constraints file pinning the workspace's locked registry packages: the throwaway
    environment gets the versions CI tests with (and uv's cache has)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    seen: dict[str, list[str]] = {}
    for package in lock["package"]:
        if "registry" in package.get("source", {}):
            seen.setdefault(package["name"], []).append(package["version"])
    # A package locked at several versions (per platform or Python) is left free.
    pins = [f"{name}=={versions[0]}" for name, versions in seen.items() if len(versions) == 1]
    target.write_text("\n".join(sorted(pins)) + "\n")
    return target


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build the example plugin's environment")
    scratch = tmp_path_factory.mktemp("example-plugin")
    env = _environ(scratch)
    venv = scratch / "venv"
    made = _run(
        [uv, "venv", "--quiet", "--python", "3.11", str(venv)], cwd=scratch, env=env, timeout=120
    )
    assert made.returncode == 0, made.stderr
    installed = _run(
        [
            uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
            "--constraints", str(_locked_versions(scratch / "constraints.txt")),
            # Local builds are cached by pyproject.toml's mtime; these sources change without it.
            "--refresh-package", "arkrelay-core", "--refresh-package", DIST,
            str(ROOT), str(EXAMPLE), "pytest", "pytest-trio",
        ],
        cwd=scratch,
        env=env,
        timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return venv


def _outcomes(report: Path) -> dict[str, str]:
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        verdicts = [child.tag for child in case if child.tag in {"failure", "error", "skipped"}]
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = (
            verdicts[0] if verdicts else "passed"
        )
    return outcomes


def test_example_passes_the_asset_contract_suite(venv: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    env = _environ(tmp_path) | {"ARKRELAY_CONTRACT_TESTS": str(ROOT / "contract-tests")}
    result = _run(
        [
            str(venv / "bin" / "python"), "-m", "pytest", str(EXAMPLE / "tests"),
            "-p", "no:cacheprovider", "-q", f"--junitxml={report}",
        ],
        cwd=EXAMPLE,
        env=env,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = _outcomes(report)
    contract = {
        name.split("[", 1)[1].rstrip("]"): verdict
        for name, verdict in outcomes.items()
        if name.startswith("tests.test_contract::test_asset_contract[")
    }
    assert {"info", "mint_and_balance", "unknown_asset", "import_proof"} <= contract.keys()
    assert contract == {
        check: "skipped" if check in CHANNEL_CHECKS else "passed" for check in contract
    }
    # The example's own tests ran in that environment too, and none was skipped.
    own = {name: v for name, v in outcomes.items() if name.startswith("tests.test_backend::")}
    assert len(own) >= 10 and set(own.values()) == {"passed"}


def test_arkrelay_plugins_lists_the_example_with_its_version(venv: Path, tmp_path: Path) -> None:
    arkrelay = str(venv / "bin" / "arkrelay")
    env = _environ(tmp_path)
    header = ["DISTRIBUTION", "VERSION", "NAME", "ROLE", "STATUS"]
    listed = _run([arkrelay, "plugins"], cwd=tmp_path, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    # Only arkrelay-core and the example are installed: it is the one plugin.
    row = [DIST, _example_version(), "example-assets", "assets"]
    assert [line.split() for line in listed.stdout.splitlines()] == [header, [*row, "disabled"]]

    config = tmp_path / "gw.toml"
    config.write_text(
        '[gateway]\ndata_dir = "state"\n\n'
        '[backend.assets]\nplugin = "example-assets"\nblock_interval = "30s"\nconfirmations = 2\n'
    )
    listed = _run(
        [arkrelay, "plugins", "--config", str(config)], cwd=tmp_path, env=env, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert [line.split() for line in listed.stdout.splitlines()] == [header, [*row, "enabled"]]

    # The gateway builds and serves it from the installed wheel, migrations included.
    ran = _run(
        [arkrelay, "run", "--check", "--config", str(config)], cwd=tmp_path, env=env, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert "assets     example-assets" in ran.stdout
    assert "gateway running" in ran.stdout

    config.write_text('[backend.assets]\nplugin = "example-assets"\nconfirmation = 2\n')
    checked = _run([arkrelay, "config", "check", str(config)], cwd=tmp_path, env=env, timeout=120)
    assert checked.returncode == 1
    assert checked.stderr.strip() == (
        f"Error: {config}: backend.assets.confirmation: unknown key (did you mean 'confirmations'?)"
    )
