"""The SDK judge itself: the plugin's ark txs pass @arkade-os/sdk's rebuild, the journal
that feeds it survives in the simulator's state file, and a tampered journal entry fails.

Transactions are built by the arkd plugin (the gateway's builder) and submitted over real
gRPC to the simulator; the judge reads what the simulator accepted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import trio
from arkrelay_arkd import arktx
from arkrelay_arkd.client import SIM_STATE_FILE, ArkdBackend
from arkrelay_arkd.settings import ArkdSettings
from arkrelay_arkd.sim import ArkdSimulator, Ledger
from arkrelay_arkd.sim.journal import JournalEntry, read_journal
from embit.script import Script
from embit.transaction import TransactionOutput

from arkrelay_core.config import Duration, HostPort
from arkrelay_core.interfaces import InputSignature, TxOutputSpec
from arkrelay_core.nostr import bip340

from .judge import JudgeFailed, judge, judge_state_files, need_sdk

pytestmark = pytest.mark.node


@pytest.fixture(autouse=True)
def _needs_sdk() -> None:
    need_sdk()


class Key:
    def __init__(self) -> None:
        self.secret = bip340.generate_secret_key()
        self.pub = bip340.xonly_public_key(self.secret).hex()

    def sign(self, sighash_hex: str) -> str:
        return bip340.schnorr_sign(self.secret, bytes.fromhex(sighash_hex)).hex()


@pytest.fixture
async def served(
    tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[tuple[ArkdSimulator, ArkdBackend]]:
    # Sub-dust outputs are part of what the SDK must rebuild: allowed as arkd allows them
    # with ARKD_VTXO_MIN_AMOUNT=1.
    sim = ArkdSimulator(Ledger(state_file=tmp_path / SIM_STATE_FILE, vtxo_min_amount=1))
    sim.start(0)
    try:
        settings = ArkdSettings(
            target=HostPort("127.0.0.1", sim.port or 0), call_timeout=Duration(5)
        )
        backend = ArkdBackend(settings)
        await nursery.start(backend.serve)
        yield sim, backend
    finally:
        sim.stop()


async def _pay(
    backend: ArkdBackend, payer: Key, outputs: list[TxOutputSpec]
) -> tuple[str, str, tuple[str, ...]]:
    """Spend every VTXO of ``payer`` to ``outputs``: (ark txid, the ark tx and checkpoints
    submitted) once finalized."""
    vtxos = await backend.list_vtxos(payer.pub)
    built = await backend.build_offchain_tx(vtxos, outputs)
    signed = backend.add_signatures(
        built.ark_tx,
        [InputSignature(s.input_index, payer.pub, payer.sign(s.sighash)) for s in built.to_sign],
    )
    submitted = await backend.submit_tx(signed, built.checkpoint_txs)
    finals = [
        backend.add_signatures(
            t.psbt, [InputSignature(t.input_index, payer.pub, payer.sign(t.sighash))]
        )
        for t in submitted.to_sign
    ]
    await backend.finalize_tx(submitted.ark_txid, finals)
    return submitted.ark_txid, signed, built.checkpoint_txs


async def _three_payments(
    sim: ArkdSimulator, backend: ArkdBackend
) -> list[tuple[str, str, tuple[str, ...]]]:
    """One input to two outputs; two inputs to three outputs, one of them sub-dust; and a
    VTXO received offchain spent again."""
    alice, bob, carol = Key(), Key(), Key()
    sim.board(alice.pub, 6_000)
    first = await _pay(
        backend, alice, [TxOutputSpec(bob.pub, 2_500), TxOutputSpec(alice.pub, 3_500)]
    )
    sim.board(alice.pub, 1_000)
    second = await _pay(
        backend,
        alice,
        [TxOutputSpec(carol.pub, 4_000), TxOutputSpec(bob.pub, 200), TxOutputSpec(alice.pub, 300)],
    )
    third = await _pay(backend, bob, [TxOutputSpec(carol.pub, 2_500)])
    return [first, second, third]


async def test_the_plugins_ark_txs_pass_the_sdk_rebuild(served, tmp_path: Path) -> None:
    sim, backend = served
    with trio.fail_after(60):
        txids = await _three_payments(sim, backend)
    journal = sim.ledger.journal()
    # Each entry holds SubmitTx's PSBTs exactly as the gateway sent them.
    assert [(e.ark_txid, e.ark_tx, tuple(e.checkpoint_txs)) for e in journal] == txids
    assert [len(e.inputs) for e in journal] == [1, 2, 1]
    assert judge(journal) == 3
    # The journal is part of the durable state: what a test reads from the file.
    assert read_journal(tmp_path / SIM_STATE_FILE) == journal
    assert judge_state_files(tmp_path) == 3


async def test_a_restarted_simulator_keeps_its_journal(served, tmp_path: Path) -> None:
    sim, backend = served
    alice = Key()
    sim.board(alice.pub, 5_000)
    with trio.fail_after(60):
        await _pay(backend, alice, [TxOutputSpec(Key().pub, 5_000)])
    restarted = Ledger(state_file=tmp_path / SIM_STATE_FILE)
    assert restarted.journal() == sim.ledger.journal() != []


# ---------------------------------------------------------------------------- tampering


async def _one_entry(sim: ArkdSimulator, backend: ArkdBackend) -> JournalEntry:
    alice = Key()
    sim.board(alice.pub, 4_000)
    with trio.fail_after(60):
        await _pay(backend, alice, [TxOutputSpec(Key().pub, 1_000), TxOutputSpec(alice.pub, 3_000)])
    (entry,) = sim.ledger.journal()
    assert judge([entry]) == 1
    return entry


def _edit_psbt(b64: str, edit) -> str:
    psbt = arktx.decode_psbt(b64)
    edit(psbt)
    return arktx.encode_psbt(psbt)


async def test_a_changed_output_amount_fails_the_judge(served) -> None:
    entry = await _one_entry(*served)
    outputs = list(entry.outputs)
    outputs[0] = msgspec.structs.replace(outputs[0], amount=outputs[0].amount - 1)
    tampered = msgspec.structs.replace(entry, outputs=outputs)
    with pytest.raises(JudgeFailed, match=r"1 of 1 ark txs differ") as failed:
        judge([tampered])
    assert f"ark tx {entry.ark_txid}" in str(failed.value)
    assert "ark tx: txid" in str(failed.value) and "unsigned tx" in str(failed.value)


async def test_a_changed_sequence_fails_the_judge(served) -> None:
    entry = await _one_entry(*served)

    def lower_sequence(psbt) -> None:
        psbt.tx.vin[0].sequence = 0xFFFFFFFE
        psbt.inputs[0].sequence = 0xFFFFFFFE

    tampered = msgspec.structs.replace(entry, ark_tx=_edit_psbt(entry.ark_tx, lower_sequence))
    with pytest.raises(JudgeFailed) as failed:
        judge([tampered])
    message = str(failed.value)
    assert "ark tx: txid" in message and "feffffff" in message  # little-endian
    # The sighash the gateway would ask the wallet to sign changes with it.
    assert "ark tx input 0 sighash" in message


async def test_a_changed_checkpoint_field_fails_the_judge(served) -> None:
    entry = await _one_entry(*served)

    def other_witness_utxo(psbt) -> None:
        utxo = psbt.inputs[0].witness_utxo
        psbt.inputs[0].witness_utxo = TransactionOutput(
            utxo.value + 1, Script(utxo.script_pubkey.data)
        )

    (checkpoint,) = entry.checkpoint_txs
    tampered = msgspec.structs.replace(
        entry, checkpoint_txs=[_edit_psbt(checkpoint, other_witness_utxo)]
    )
    with pytest.raises(JudgeFailed) as failed:
        judge([tampered])
    message = str(failed.value)
    assert "checkpoint 0" in message and "witness utxo (amount, script)" in message
    assert "sighash" in message  # BIP341 commits to every input's amount


async def test_a_dropped_ark_field_fails_the_judge(served) -> None:
    entry = await _one_entry(*served)

    def drop_taptree(psbt) -> None:
        psbt.inputs[0].unknown = {}

    tampered = msgspec.structs.replace(entry, ark_tx=_edit_psbt(entry.ark_tx, drop_taptree))
    with pytest.raises(JudgeFailed, match=r"unknown fields \(Ark PSBT fields\)"):
        judge([tampered])


async def test_what_the_sdk_refuses_fails_the_judge(served) -> None:
    entry = await _one_entry(*served)
    # A leaf that is not in the VTXO's tree: the SDK cannot find it to spend.
    tampered = msgspec.structs.replace(
        entry,
        inputs=[msgspec.structs.replace(entry.inputs[0], leaf="51")],
    )
    with pytest.raises(JudgeFailed, match="the SDK refused to build it"):
        judge([tampered])


def test_an_empty_journal_is_nothing_to_judge() -> None:
    assert judge([]) == 0
