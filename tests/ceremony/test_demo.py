"""`arkrelay demo`: every flow over the gateway's own relay endpoint, against the
simulators, from the command line; and the demo fails when a balance is not the one
expected."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from arkrelay_arkd.client import SIM_STATE_FILE
from arkrelay_arkd.sim.journal import read_journal
from arkrelay_wallet import demo

from arkrelay_core.plugins import load_plugins

from .processes import ARKRELAY


def test_the_demo_command_completes_every_flow(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ARKRELAY), "demo", "--dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in range(7):
        assert f"[{step}/6]" in out
    # Each flow's events pass by: intents, challenges, signatures, confirmations.
    for kind in ("31510 intent", "31511 challenge", "31512 signature", "31340 confirmation"):
        assert kind in out
    assert "5 confirmations, every balance as expected" in out
    # Each wallet read its VTXOs from the Ark server's REST indexer too, and they agreed.
    for name in demo.EXPECTED:
        assert f"    {name}: the Ark server lists the same " in out
    assert out.rstrip().endswith("demo complete")
    for name, want in demo.EXPECTED.items():
        line = next(line for line in out.splitlines() if line.startswith(f"  {name} "))
        assert f"{want.get('gBTC', 0):,}" in line and line.endswith("ok")
    # What the SDK judge gets to rebuild: the demo's five ark txs, the swap batch among them.
    journal = read_journal(tmp_path / "demo" / SIM_STATE_FILE)
    assert [len(e.inputs) for e in journal] == [1, 1, 1, 3, 1]


async def test_the_demo_fails_when_a_balance_differs(tmp_path: Path, monkeypatch) -> None:
    lines: list[str] = []
    monkeypatch.setitem(demo.EXPECTED, "bob", {"gBTC": 1})
    run = demo.Demo(load_plugins(), tmp_path / "demo", out=lines.append)
    with pytest.raises(demo.DemoFailed, match="differ from the expected ones for bob"):
        await run.run()
    assert any(line.startswith("  bob ") and "MISMATCH" in line for line in lines)


async def test_every_flow_also_runs_through_a_real_nostr_relay(tmp_path: Path, relay) -> None:
    lines: list[str] = []
    run = demo.Demo(load_plugins(), tmp_path / "demo", out=lines.append, relay=relay.url)
    balances = await run.run()
    assert balances == demo.EXPECTED
    assert f"on {relay.url}" in lines[0]
    assert run.confirmations == 5


async def test_the_demo_never_empties_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "arkrelay.db").write_text("an operator's database")
    run = demo.Demo(load_plugins(), tmp_path / "data", out=lambda _: None)
    with pytest.raises(demo.DemoFailed, match="is not a demo directory"):
        await run.run()
    assert (tmp_path / "data" / "arkrelay.db").read_text() == "an operator's database"
