"""The transactions the simulator's indexer can show: commitment txs, ark txs and their
checkpoints, recorded from the ledger's transaction events as they happen.

Kept in memory for this process's life (a ledger resumed from its state file has its
VTXOs but not the history of the txs before the restart), at most ``MAX_TXS`` of each
kind, oldest forgotten first.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable

from .vtxos import SimTxEvent

__all__ = ["ArkTxRecord", "CheckpointRecord", "CommitmentRecord", "TxHistory"]

MAX_TXS = 50_000


@dataclasses.dataclass(frozen=True)
class CheckpointRecord:
    txid: str
    tx: str  # base64 PSBT, as finalized
    spends: str  # the VTXO outpoint it spends


@dataclasses.dataclass(frozen=True)
class ArkTxRecord:
    txid: str
    tx: str  # base64 PSBT, as the server co-signed it
    checkpoints: tuple[CheckpointRecord, ...]


@dataclasses.dataclass(frozen=True)
class CommitmentRecord:
    txid: str
    tx: str  # raw tx hex
    at: int
    output_amount: int
    output_vtxos: int
    expires_at: int


class TxHistory:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ark: collections.OrderedDict[str, ArkTxRecord] = collections.OrderedDict()
        self._checkpoints: collections.OrderedDict[str, CheckpointRecord] = (
            collections.OrderedDict()
        )
        self._commitments: collections.OrderedDict[str, CommitmentRecord] = (
            collections.OrderedDict()
        )

    def record(self, event: SimTxEvent) -> None:
        """A ledger observer: remember the tx an event carries."""
        with self._lock:
            if event.kind == "ark_tx":
                checkpoints = tuple(
                    CheckpointRecord(cp_txid, tx, outpoint)
                    for outpoint, cp_txid, tx in sorted(event.checkpoints, key=lambda c: c[1])
                )
                _put(self._ark, event.txid, ArkTxRecord(event.txid, event.tx, checkpoints))
                for cp in checkpoints:
                    _put(self._checkpoints, cp.txid, cp)
            elif event.kind == "commitment_tx":
                record = CommitmentRecord(
                    txid=event.txid,
                    tx=event.tx,
                    at=int(self._clock()),
                    output_amount=sum(v.amount for v in event.spendable),
                    output_vtxos=len(event.spendable),
                    expires_at=max((v.expires_at for v in event.spendable), default=0),
                )
                _put(self._commitments, event.txid, record)

    def ark_tx(self, txid: str) -> ArkTxRecord | None:
        with self._lock:
            return self._ark.get(txid)

    def commitment(self, txid: str) -> CommitmentRecord | None:
        with self._lock:
            return self._commitments.get(txid)

    def virtual_tx(self, txid: str) -> str | None:
        """An ark or checkpoint tx (base64 PSBT) by txid."""
        with self._lock:
            if txid in self._ark:
                return self._ark[txid].tx
            checkpoint = self._checkpoints.get(txid)
            return checkpoint.tx if checkpoint is not None else None


def _put(table: collections.OrderedDict[str, object], key: str, value: object) -> None:
    table[key] = value
    while len(table) > MAX_TXS:
        table.popitem(last=False)
