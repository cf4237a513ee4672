"""The `arkrelay` command's own surface: version, db, config check, run on defaults."""

import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.support import running

ARKRELAY = Path(sys.executable).parent / "arkrelay"


def _run(*args, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKRELAY_")}
    env.update(env_extra or {})
    return subprocess.run(
        [str(ARKRELAY), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_version(tmp_path):
    result = _run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert (
        result.stdout.strip() == f"arkrelay, version {importlib.metadata.version('arkrelay-core')}"
    )


def test_db_upgrade_downgrade_current(db_url, tmp_path):
    url = db_url
    assert "base (behind" in _run("db", "current", "--database", url, cwd=tmp_path).stdout
    up = _run("db", "upgrade", "--database", url, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert "up to date" in _run("db", "current", "--database", url, cwd=tmp_path).stdout
    down = _run("db", "downgrade", "base", "--database", url, cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "database at base"


def test_db_commands_read_the_database_from_the_config(tmp_path):
    (tmp_path / "gw.toml").write_text('[gateway]\ndatabase = "sqlite:///from-config.db"\n')
    result = _run("db", "upgrade", "--config", "gw.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-config.db").exists()


def test_config_check_masks_secrets(tmp_path):
    (tmp_path / "gw.toml").write_text(
        '[gateway]\nnetwork = "signet"\nadmin_key = "env:ADMIN_KEY"\n'
    )
    result = _run(
        "config",
        "check",
        "gw.toml",
        cwd=tmp_path,
        env_extra={"ADMIN_KEY": "hunter2-very-long-secret"},
    )
    assert result.returncode == 0, result.stderr
    assert '"network": "signet"' in result.stdout
    assert "hunter2-very-long-secret" not in result.stdout + result.stderr
    assert "env:ADMIN_KEY" in result.stdout


def test_config_check_reports_a_missing_file(tmp_path):
    result = _run("config", "check", "nope.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: nope.toml: no such config file"


def test_run_on_embedded_defaults_creates_state_and_a_dev_key(tmp_path):
    first = _run("run", "--check", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "gateway running" in first.stdout
    assert "DEV KEY" in first.stdout
    # The embedded defaults compose the relay endpoint and the three simulated daemons,
    # and say loudly that the daemons are simulated.
    assert "endpoint   ws://127.0.0.1:7447" in first.stdout
    assert "http         http://127.0.0.1:8080" in first.stdout
    for role, plugin in (("ark", "arkd"), ("lightning", "lnd"), ("assets", "tapd")):
        assert re.search(rf"{role}\s+{plugin}\s+SIMULATED on 127\.0\.0\.1:\d+", first.stdout)
    assert "!! SIMULATED: ark, lightning, assets" in first.stdout
    npub = next(line.split()[-1] for line in first.stdout.splitlines() if "service key" in line)
    assert npub.startswith("npub1")
    assert (tmp_path / ".arkrelay" / "gateway.key").exists()
    # Starting again keeps the same identity (the key file is reused, not replaced).
    ledger = tmp_path / ".arkrelay" / "sim-arkd.json"

    def server_secret() -> str:
        # The state file is a log: its first line is the snapshot holding the server key.
        return json.loads(ledger.read_text().splitlines()[0])["signer_secret"]

    server_key = server_secret()
    second = _run("run", "--check", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert npub in second.stdout
    # ... and the simulated arkd resumes its ledger (same server key, same VTXOs).
    assert server_secret() == server_key


def test_mainnet_never_gets_a_generated_key(tmp_path):
    (tmp_path / "gw.toml").write_text('[gateway]\nnetwork = "mainnet"\n')
    result = _run("run", "--check", "--config", "gw.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert "ARKRELAY_KEY_PASSPHRASE is not set" in result.stderr
    assert not (tmp_path / ".arkrelay" / "gateway.key").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_run_stops_cleanly_on_ctrl_c_and_sigterm(tmp_path, signum):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKRELAY_")}
    # A few seconds is the promise; the stop margin covers a loaded CI machine.
    async with running(
        [str(ARKRELAY), "run"], cwd=tmp_path, env=env, stop_signal=signum, stop_timeout=20
    ) as command:
        with trio.fail_after(60):
            await command.wait_for(b"gateway running")
    assert command.process.returncode == 0, command.text
    assert command.text.rstrip().endswith("stopped")
    assert "Traceback" not in command.text


def test_run_keeps_the_data_directory_and_its_databases_private(tmp_path):
    state = tmp_path / "state"
    (tmp_path / "gw.toml").write_text(
        f'[gateway]\nnetwork = "regtest"\ndata_dir = "{state}"\n'
        '[http]\nlisten = "127.0.0.1:0"\n'
        '[transport.endpoint]\nlisten = "127.0.0.1:0"\n'
        '[backend.lightning]\nplugin = "lnd"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKRELAY_")}
    # The umask most shells have: without the fix, 0755 and 0644.
    result = subprocess.run(
        [str(ARKRELAY), "run", "--check", "--config", "gw.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert result.returncode == 0, result.stderr
    assert state.stat().st_mode & 0o777 == 0o700
    databases = [p for p in state.iterdir() if p.suffix in (".db", ".sqlite3")]
    assert {p.name for p in databases} >= {"arkrelay.db", "endpoint-events.sqlite3"}
    for path in state.iterdir():
        assert path.stat().st_mode & 0o077 == 0, (path.name, oct(path.stat().st_mode))
