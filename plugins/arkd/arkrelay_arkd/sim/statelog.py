"""The ledger's state file: a snapshot followed by the changes made since (sim/logfile.py).

Each change names the records it touched, whole (a VTXO as it now stands, a pending tx
added or dropped, ark txids finalized, journal entries accepted, the batch count), so
replaying the changes over the snapshot in order gives the state as last acknowledged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec

from .journal import JournalEntry
from .logfile import split_records
from .vtxos import SimVtxo

__all__ = ["Change", "PendingTx", "Snapshot", "load"]


@dataclasses.dataclass
class PendingTx:
    """An ark tx arkd accepted and co-signed, its checkpoints not yet finalized."""

    ark_txid: str
    final_ark_tx: str
    signed_checkpoints: dict[str, str]  # checkpoint txid -> b64
    spent: list[str]  # VTXO outpoints, in ark-input order
    expires_at: int


class Snapshot(msgspec.Struct):
    """The whole state: the log's first line."""

    network: str
    signer_secret: str
    forfeit_secret: str
    vtxos: list[SimVtxo]
    pending: list[PendingTx]
    finalized: list[str]
    batches: int
    journal: list[JournalEntry] = []


class Change(msgspec.Struct, omit_defaults=True):
    """One acknowledged change: a later line of the log."""

    vtxos: list[SimVtxo] = []
    pending: list[PendingTx] = []
    #: Pending ark txids that were finalized (dropped from pending, added to finalized).
    finalized: list[str] = []
    journal: list[JournalEntry] = []
    batches: int | None = None


_snapshot = msgspec.json.Decoder(Snapshot)
_change = msgspec.json.Decoder(Change)


def load(path: Path, network: str) -> Snapshot | None:
    """The state saved in ``path`` with every change replayed; None if there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    first, changes = split_records(data)
    try:
        state = _snapshot.decode(first)
        if state.network != network:
            raise ValueError(f"{path}: simulator state is for {state.network}, not {network}")
        vtxos = {v.outpoint: v for v in state.vtxos}
        pending = {p.ark_txid: p for p in state.pending}
        finalized = dict.fromkeys(state.finalized)
        for line in changes:
            change = _change.decode(line)
            vtxos.update((v.outpoint, v) for v in change.vtxos)
            pending.update((p.ark_txid, p) for p in change.pending)
            for ark_txid in change.finalized:
                pending.pop(ark_txid, None)
                finalized[ark_txid] = None
            state.journal.extend(change.journal)
            if change.batches is not None:
                state.batches = change.batches
    except msgspec.DecodeError as exc:
        raise ValueError(f"{path}: unreadable arkd simulator state: {exc}") from exc
    state.vtxos = list(vtxos.values())
    state.pending = list(pending.values())
    state.finalized = list(finalized)
    return state
