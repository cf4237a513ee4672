"""An in-memory chain behind the simulator's ``Chain`` protocol, for the batch tests.

It keeps real transactions: the faucet pays from a made-up coinbase, a broadcast must spend
known unspent outputs and pay no more than it spends, and ``mine`` confirms the mempool.
Signatures are the chain process's business (its own tests); here the batch tests check
the commitment tx's witnesses themselves.
"""

from __future__ import annotations

import os
import threading
import time

from embit.script import Script, address_to_scriptpubkey
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from arkrelay_arkd.sim.esplora import ChainError, TxStatus, Utxo


class FakeChain:
    def __init__(self, fee_rate: float = 2.0) -> None:
        self._lock = threading.Lock()
        self.txs: dict[str, Transaction] = {}
        self.confirmed: dict[str, int] = {}  # txid -> block time
        self.spent: dict[tuple[str, int], str] = {}
        self.height = 100
        self.rate = fee_rate
        self.broadcasts: list[str] = []

    def tx_hex(self, txid: str) -> str | None:
        with self._lock:
            tx = self.txs.get(txid)
            return tx.serialize().hex() if tx is not None else None

    def tx_status(self, txid: str) -> TxStatus | None:
        with self._lock:
            if txid not in self.txs:
                return None
            when = self.confirmed.get(txid)
            return TxStatus(when is not None, when, self.height if when is not None else None)

    def is_spent(self, txid: str, vout: int) -> bool:
        with self._lock:
            return (txid, vout) in self.spent

    def utxos(self, address: str) -> list[Utxo]:
        script = address_to_scriptpubkey(address).data
        with self._lock:
            return [
                Utxo(txid, vout, out.value, txid in self.confirmed)
                for txid, tx in self.txs.items()
                for vout, out in enumerate(tx.vout)
                if out.script_pubkey.data == script and (txid, vout) not in self.spent
            ]

    def broadcast(self, tx_hex: str) -> str:
        tx = Transaction.parse(bytes.fromhex(tx_hex))
        with self._lock:
            spent_value = 0
            for vin in tx.vin:
                key = (vin.txid.hex(), vin.vout)
                parent = self.txs.get(key[0])
                if parent is None or key[1] >= len(parent.vout):
                    raise ChainError("broadcast refused: bad-txns-inputs-missingorspent")
                if key in self.spent:
                    raise ChainError("broadcast refused: txn-mempool-conflict")
                spent_value += parent.vout[key[1]].value
            if sum(o.value for o in tx.vout) > spent_value:
                raise ChainError("broadcast refused: bad-txns-in-belowout")
            txid = tx.txid().hex()
            for vin in tx.vin:
                self.spent[(vin.txid.hex(), vin.vout)] = txid
            self.txs[txid] = tx
            self.broadcasts.append(txid)
            return txid

    def tip_height(self) -> int:
        return self.height

    def fee_rate(self) -> float:
        return self.rate

    def faucet(self, address: str, amount: int) -> tuple[str, int]:
        script = address_to_scriptpubkey(address).data
        return self.pay(script, amount, confirmed=True)

    def pay(self, script: bytes, amount: int, *, confirmed: bool) -> tuple[str, int]:
        tx = Transaction(
            version=2,
            vin=[TransactionInput(os.urandom(32), 0)],
            vout=[TransactionOutput(amount, Script(script))],
        )
        txid = tx.txid().hex()
        with self._lock:
            self.txs[txid] = tx
            if confirmed:
                self.confirmed[txid] = int(time.time())
        return txid, 0

    def mine(self) -> None:
        with self._lock:
            self.height += 1
            for txid in self.txs:
                self.confirmed.setdefault(txid, int(time.time()))
