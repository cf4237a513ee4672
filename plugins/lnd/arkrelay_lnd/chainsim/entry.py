"""A transaction the simulated chain knows, confirmed or waiting in the mempool: what the
ledger stores and the admission rules (``policy``) judge."""

from __future__ import annotations

import dataclasses
import time

from embit.transaction import Transaction, TransactionOutput

from .blocks import vsize, weight, wtxid

__all__ = ["Entry", "Outpoint"]

Outpoint = tuple[str, int]


@dataclasses.dataclass
class Entry:
    """A transaction the chain knows: confirmed (``height`` > 0) or in the mempool."""

    tx: Transaction
    raw: bytes
    txid: str
    #: The outputs its inputs spend, in input order; empty for a faucet transaction.
    spent: list[TransactionOutput]
    fee: int
    height: int = 0
    seen: int = dataclasses.field(default_factory=lambda: int(time.time()))

    @property
    def wtxid(self) -> str:
        return wtxid(self.raw)

    @property
    def vsize(self) -> int:
        return vsize(self.tx)

    @property
    def weight(self) -> int:
        return weight(self.tx)

    @property
    def coinbase(self) -> bool:
        return not self.spent

    def parents(self) -> set[str]:
        return {inp.txid.hex() for inp in self.tx.vin}
