"""The simulated chain and each node's on-chain wallet: real transactions (embit), blocks
mined on demand, confirmations counted from the tip."""

from __future__ import annotations

import dataclasses
import hashlib
import os

from embit import ec
from embit.script import Script, p2pkh, p2wpkh, witness_p2wpkh
from embit.transaction import Transaction, TransactionInput, TransactionOutput

__all__ = ["Chain", "Wallet", "WalletError", "WalletTx"]

_OP_RETURN = 0x6A
_VBYTES_PER_OUTPUT = 43
_VBYTES_BASE = 11 + 68  # version/locktime/counts + one p2wpkh input


class WalletError(Exception):
    """What lnd's wallet would refuse (insufficient funds, bad output)."""


@dataclasses.dataclass
class WalletTx:
    txid: str
    raw: bytes
    amount: int  # net effect on the wallet, sats
    fee: int
    label: str
    block_height: int = 0  # 0 while unconfirmed
    block_hash: str = ""


@dataclasses.dataclass
class _Utxo:
    txid: str
    vout: int
    value: int
    height: int  # 0 while unconfirmed


class Chain:
    """Block height and hashes; ``mine`` confirms every pending transaction."""

    def __init__(self, height: int = 100) -> None:
        self.height = height
        self.hashes: dict[int, str] = {}
        self.wallets: list[Wallet] = []

    def tip_hash(self) -> str:
        return self.hashes.get(self.height, "00" * 32)

    def mine(self, blocks: int = 1) -> list[str]:
        mined = []
        for _ in range(blocks):
            self.height += 1
            block_hash = hashlib.sha256(os.urandom(32)).hexdigest()
            self.hashes[self.height] = block_hash
            mined.append(block_hash)
            for wallet in self.wallets:
                wallet.confirm(self.height, block_hash)
        return mined


class Wallet:
    """A node's p2wpkh wallet: coins, OP_RETURN sends with a change output, signatures."""

    def __init__(self, chain: Chain, secret: bytes, *, funds: int = 0) -> None:
        self.chain = chain
        self._key = ec.PrivateKey(secret)
        self._script = p2wpkh(self._key.get_public_key())
        self.utxos: list[_Utxo] = []
        self.txs: dict[str, WalletTx] = {}
        chain.wallets.append(self)
        if funds:
            self.receive(funds, confirmed=True)

    def receive(self, amount: int, *, confirmed: bool) -> WalletTx:
        """Coins from outside (a faucet): one output paying this wallet."""
        tx = Transaction(
            vin=[TransactionInput(os.urandom(32), 0, witness=None)],
            vout=[TransactionOutput(amount, self._script)],
        )
        raw = tx.serialize()
        record = WalletTx(tx.txid().hex(), raw, amount, 0, "faucet")
        self.txs[record.txid] = record
        self.utxos.append(_Utxo(record.txid, 0, amount, 0))
        if confirmed:
            self.confirm_tx(record.txid, self.chain.height, self.chain.tip_hash())
        return record

    def balance(self) -> tuple[int, int]:
        """(confirmed, unconfirmed) sats."""
        confirmed = sum(u.value for u in self.utxos if u.height)
        return confirmed, sum(u.value for u in self.utxos) - confirmed

    def send_outputs(
        self, outputs: list[tuple[int, bytes]], *, sat_per_vbyte: float, label: str = ""
    ) -> WalletTx:
        """Pay ``outputs`` (value, pkScript) from confirmed coins, change back to us."""
        if not outputs:
            raise WalletError("no outputs")
        for value, script in outputs:
            if value < 0:
                raise WalletError("negative output value")
            if value < 294 and not (script and script[0] == _OP_RETURN):
                raise WalletError(f"output of {value} sats is dust")
        fee = int((_VBYTES_BASE + _VBYTES_PER_OUTPUT * (len(outputs) + 1)) * sat_per_vbyte)
        need = sum(v for v, _ in outputs) + fee
        coin = next((u for u in self.utxos if u.height and u.value >= need + 294), None)
        if coin is None:
            raise WalletError(f"insufficient funds available to construct transaction: {need}")
        vout = [TransactionOutput(v, Script(s)) for v, s in outputs]
        vout.append(TransactionOutput(coin.value - need, self._script))
        tx = Transaction(vin=[TransactionInput(bytes.fromhex(coin.txid), coin.vout)], vout=vout)
        pub = self._key.get_public_key()
        sighash = tx.sighash_segwit(0, p2pkh(pub), coin.value)
        tx.vin[0].witness = witness_p2wpkh(self._key.sign(sighash), pub)
        self.utxos.remove(coin)
        record = WalletTx(tx.txid().hex(), tx.serialize(), -need, fee, label)
        self.txs[record.txid] = record
        self.utxos.append(_Utxo(record.txid, len(vout) - 1, coin.value - need, 0))
        return record

    def confirm(self, height: int, block_hash: str) -> None:
        for txid, record in self.txs.items():
            if not record.block_height:
                self.confirm_tx(txid, height, block_hash)

    def confirm_tx(self, txid: str, height: int, block_hash: str) -> None:
        record = self.txs[txid]
        record.block_height, record.block_hash = height, block_hash
        for utxo in self.utxos:
            if utxo.txid == txid:
                utxo.height = height

    def confirmations(self, txid: str) -> int:
        record = self.txs.get(txid)
        if record is None or not record.block_height:
            return 0
        return self.chain.height - record.block_height + 1
