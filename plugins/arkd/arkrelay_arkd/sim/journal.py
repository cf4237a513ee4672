"""The offchain txs the simulator accepted, as it understood them.

arkd keeps every offchain tx it accepts (the ark tx and its checkpoints, as submitted).
The simulator keeps the same, plus its own reading of the submission: each input as the
VTXO it spends (outpoint and amount from the VTXO set, tapscripts and spending leaf from
the checkpoint's PSBT, checked against the VTXO's script), each output, and the server's
unroll closure the checkpoints used. With those an independent implementation can build
the txs again from the same inputs and compare them with what was submitted, which is how
the tests judge the gateway's transactions against Ark Labs' own SDK.

The entries live in the ledger's state file (``Ledger.journal()`` in process,
``read_journal(state_file)`` from outside), in the order the submissions were accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from .. import arktx
from .logfile import split_records

__all__ = ["JournalEntry", "JournalInput", "JournalOutput", "journal_entry", "read_journal"]


class JournalInput(msgspec.Struct, frozen=True):
    """A spent VTXO: its outpoint, amount, every leaf of its tree and the leaf spent."""

    txid: str
    vout: int
    amount: int
    tapscripts: list[str]  # hex, in the order of the PSBT's taptree field
    leaf: str  # hex, one of tapscripts


class JournalOutput(msgspec.Struct, frozen=True):
    """An ark-tx output other than the anchor: pkScript (hex) and amount."""

    script: str
    amount: int


class JournalEntry(msgspec.Struct, frozen=True):
    ark_txid: str
    #: The ark tx and the checkpoint txs exactly as SubmitTx received them (base64 PSBTs).
    ark_tx: str
    checkpoint_txs: list[str]
    inputs: list[JournalInput]
    outputs: list[JournalOutput]
    #: The server's unroll closure (GetInfo.checkpoint_tapscript) and signer key, both hex.
    checkpoint_tapscript: str
    signer_pubkey: str
    accepted_at: int


def journal_entry(
    ark_txid: str,
    ark_tx: str,
    checkpoint_txs: Sequence[str],
    spends: Sequence[arktx.VtxoSpend],
    outputs: Sequence[tuple[bytes, int]],
    *,
    checkpoint_tapscript: bytes,
    signer: bytes,
    accepted_at: int,
) -> JournalEntry:
    return JournalEntry(
        ark_txid=ark_txid,
        ark_tx=ark_tx,
        checkpoint_txs=list(checkpoint_txs),
        inputs=[
            JournalInput(
                s.txid, s.vout, s.amount, [leaf.hex() for leaf in s.tree.leaves], s.leaf.hex()
            )
            for s in spends
        ],
        outputs=[JournalOutput(script.hex(), amount) for script, amount in outputs],
        checkpoint_tapscript=checkpoint_tapscript.hex(),
        signer_pubkey=signer.hex(),
        accepted_at=accepted_at,
    )


class _JournalOnly(msgspec.Struct):
    """The part of a state file's record this module reads (the rest is skipped): the
    snapshot's journal, or the entries one change added (sim/statelog.py)."""

    journal: list[JournalEntry] = []


_journal_only = msgspec.json.Decoder(_JournalOnly)


def read_journal(state_file: Path) -> list[JournalEntry]:
    """The journal of the ledger saved in ``state_file`` (readable while it runs)."""
    first, changes = split_records(state_file.read_bytes())
    try:
        return [e for line in (first, *changes) for e in _journal_only.decode(line).journal]
    except msgspec.DecodeError as exc:
        raise ValueError(f"{state_file}: unreadable arkd simulator state: {exc}") from exc
