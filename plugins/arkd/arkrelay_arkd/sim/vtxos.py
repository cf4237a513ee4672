"""The simulator's records: VTXOs, the transaction events it streams, stand-in commitment txs."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from ..tapscript import ANCHOR_SCRIPT

__all__ = ["SimTxEvent", "SimVtxo", "commitment_tx", "recoverable"]


@dataclasses.dataclass
class SimVtxo:
    txid: str
    vout: int
    amount: int
    script: str  # hex P2TR pkScript
    created_at: int
    expires_at: int
    commitment_txids: list[str]
    preconfirmed: bool = False
    swept: bool = False
    spent: bool = False
    spent_by: str = ""
    ark_txid: str = ""
    settled_by: str = ""
    pending: bool = False
    #: Milliseconds, as arkd's ``vtxo.updated_at``: when the VTXO last changed (created,
    #: spent, settled, finalized, renewed). GetVtxos' ``after``/``before`` filter on it.
    updated_at: int = 0

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at * 1000

    @property
    def outpoint(self) -> str:
        return f"{self.txid}:{self.vout}"

    @property
    def xonly(self) -> str:
        return self.script[4:]

    def copy(self) -> SimVtxo:
        return dataclasses.replace(self, commitment_txids=list(self.commitment_txids))


@dataclasses.dataclass(frozen=True)
class SimTxEvent:
    kind: str  # "ark_tx" | "commitment_tx" | "sweep_tx"
    txid: str
    tx: str
    spent: tuple[SimVtxo, ...]
    spendable: tuple[SimVtxo, ...]
    checkpoints: tuple[tuple[str, str, str], ...] = ()  # (vtxo outpoint, txid, tx)


def recoverable(vtxo: SimVtxo, now: int) -> bool:
    return vtxo.swept or vtxo.expires_at <= now


def commitment_tx(outputs: Sequence[tuple[bytes, int]]) -> Transaction:
    """A stand-in commitment tx: one made-up funding input, the given outputs, an anchor."""
    return Transaction(
        version=3,
        vin=[TransactionInput(os.urandom(32), 0)],
        vout=[
            *(TransactionOutput(amount, Script(script)) for script, amount in outputs),
            TransactionOutput(0, Script(ANCHOR_SCRIPT)),
        ],
    )
