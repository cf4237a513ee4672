"""The simulator's state file as a log: each change appends what it touched, a restart
replays them, a torn last change is dropped, and compaction keeps the state whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from arkrelay_arkd.sim import ArkdSimulator, Ledger
from arkrelay_arkd.sim import ledger as ledger_module
from arkrelay_arkd.sim.journal import read_journal
from arkrelay_arkd.sim.statelog import Snapshot
from arkrelay_core.interfaces import InputSignature, SubmittedTx, TxOutputSpec

from .conftest import Connect, Key


def _owner() -> bytes:
    return bytes.fromhex(Key().pub)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def test_a_change_appends_one_line_and_leaves_the_snapshot_alone(tmp_path: Path) -> None:
    state = tmp_path / "sim-arkd.json"
    ledger = Ledger(state_file=state)
    snapshot = _lines(state)[0]
    ledger.board(_owner(), 5_000)
    ledger.board(_owner(), 6_000)
    lines = _lines(state)
    assert lines[0] == snapshot
    assert len(lines) == 4 and lines[-1] == b""  # snapshot, two changes, final newline


def test_a_torn_last_change_is_dropped_and_the_log_goes_on(tmp_path: Path) -> None:
    state = tmp_path / "sim-arkd.json"
    first = Ledger(state_file=state)
    kept = first.board(_owner(), 5_000)
    with state.open("ab") as f:
        f.write(b'{"vtxos":[{"txid":"ab')  # a SIGKILL in the middle of an append
    second = Ledger(state_file=state)
    assert [v.outpoint for v in second.get_vtxos(outpoints=[kept.outpoint])] == [kept.outpoint]
    later = second.board(_owner(), 7_000)

    third = Ledger(state_file=state)
    found = third.get_vtxos(outpoints=[kept.outpoint, later.outpoint])
    assert sorted(v.amount for v in found) == [5_000, 7_000]
    assert third.batches == 2


def test_a_state_file_of_the_whole_file_format_still_opens(tmp_path: Path) -> None:
    state = tmp_path / "sim-arkd.json"
    ledger = Ledger(state_file=state)
    vtxo = ledger.board(_owner(), 5_000)
    whole = msgspec.json.decode(ledger._snapshot(), type=Snapshot)
    state.write_bytes(msgspec.json.encode(whole))  # one object, no newline

    again = Ledger(state_file=state)
    assert again.signer_xonly == ledger.signer_xonly
    assert [v.amount for v in again.get_vtxos(outpoints=[vtxo.outpoint])] == [5_000]


def test_compaction_keeps_every_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "COMPACT_FLOOR", 2_000)
    state = tmp_path / "sim-arkd.json"
    ledger = Ledger(state_file=state)
    made = [ledger.board(_owner(), 1_000 + i) for i in range(40)]
    ledger.expire(made[0].outpoint)
    assert len(_lines(state)) < 40  # compacted at least once

    again = Ledger(state_file=state)
    found = again.get_vtxos(outpoints=[v.outpoint for v in made])
    assert sorted(v.amount for v in found) == [1_000 + i for i in range(40)]
    assert again.batches == 40
    assert [v.outpoint for v in found if again.is_expired(v)] == [made[0].outpoint]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[ArkdSimulator]:
    simulator = ArkdSimulator(Ledger(state_file=tmp_path / "sim-arkd.json"))
    simulator.start(0)
    yield simulator
    simulator.stop()


async def test_submitted_and_finalized_txs_replay_after_a_restart(
    sim: ArkdSimulator, connect: Connect, tmp_path: Path
) -> None:
    state = tmp_path / "sim-arkd.json"
    alice, bob, carol = Key(), Key(), Key()
    sim.board(alice.pub, 20_000)
    sim.board(carol.pub, 9_000)
    backend = await connect()

    async def spend(key: Key, to: Key, amount: int) -> SubmittedTx:
        (vtxo,) = await backend.list_vtxos(key.pub)
        built = await backend.build_offchain_tx([vtxo], [TxOutputSpec(to.pub, amount)])
        signed = backend.add_signatures(
            built.ark_tx,
            [InputSignature(s.input_index, key.pub, key.sign(s.sighash)) for s in built.to_sign],
        )
        return await backend.submit_tx(signed, built.checkpoint_txs)

    submitted = await spend(alice, bob, 20_000)
    finals = [
        backend.add_signatures(
            t.psbt, [InputSignature(t.input_index, alice.pub, alice.sign(t.sighash))]
        )
        for t in submitted.to_sign
    ]
    await backend.finalize_tx(submitted.ark_txid, finals)
    finalized_txid = submitted.ark_txid
    pending_txid = (await spend(carol, bob, 9_000)).ark_txid

    again = Ledger(state_file=state)
    assert [p[0] for p in again.pending_txs()] == [pending_txid]
    assert again.journal() == sim.ledger.journal() == read_journal(state)
    assert [e.ark_txid for e in again.journal()] == [finalized_txid, pending_txid]
    bob_vtxos = again.get_vtxos(scripts=[sim.script_of(bob.pub)])
    assert [(v.amount, v.preconfirmed) for v in bob_vtxos] == [(20_000, True)]
