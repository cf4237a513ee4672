"""The simulated chain and each node's on-chain wallet: real signed transactions (embit), a
mempool with a fee floor, blocks mined on demand, confirmations counted from the tip.

A block takes every unconfirmed transaction whose package pays at least
``Chain.fee_floor`` sat/vB, package meaning the transaction with its unconfirmed
ancestors, as miners score a CPFP child: ``(fee_parent + fee_child) / (vsize_parent +
vsize_child)``. A child paying enough therefore confirms its parent with it. Sizes are
the transactions' own (weight / 4). Faucet coins come from outside the simulation and
always confirm. The standalone chain (``arkrelay sim chain``, ``..chainsim``) shares its
size rule and adds bitcoind's admission rules; this one stays the lnd nodes' own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time

from embit import ec
from embit.script import Script, p2pkh, p2wpkh, witness_p2wpkh
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from ..chainsim.blocks import vsize

__all__ = ["NOT_MINE", "Chain", "Wallet", "WalletError", "WalletTx", "vsize"]

_OP_RETURN = 0x6A
_DUST = 294
#: lnd's label for its sweeper's transactions (labels.LabelTypeSweepTransaction).
_SWEEP_LABEL = "0:sweep"
#: btcwallet's ErrNotMine, what lnd answers for an outpoint its wallet does not control.
NOT_MINE = "the passed output does not belong to the wallet"
#: lnwallet.ErrDoubleSpend: lnd's answer when its backend refuses a tx for its inputs
#: (conflict, missing inputs).
_DOUBLE_SPEND = "transaction rejected: output already spent"

Outpoint = tuple[str, int]


class WalletError(Exception):
    """What lnd's wallet would refuse (insufficient funds, bad output, a foreign outpoint)."""


@dataclasses.dataclass
class _Utxo:
    txid: str
    vout: int
    value: int
    height: int  # 0 while unconfirmed

    @property
    def outpoint(self) -> Outpoint:
        return self.txid, self.vout


@dataclasses.dataclass
class WalletTx:
    txid: str
    raw: bytes
    amount: int  # net effect on the wallet, sats
    fee: int
    label: str
    vsize: int = 0
    #: The wallet coins it spends (to give them back if it is replaced).
    spends: list[_Utxo] = dataclasses.field(default_factory=list)
    #: From outside the simulation (a faucet): mined whatever the fee floor.
    external: bool = False
    created: int = dataclasses.field(default_factory=lambda: int(time.time()))
    block_height: int = 0  # 0 while unconfirmed
    block_hash: str = ""

    @property
    def tx(self) -> Transaction:
        return Transaction.parse(self.raw)


class Chain:
    """Block height and hashes, and the fee floor a transaction's package must pay to be
    mined (sat/vB; 0: everything is mined)."""

    def __init__(self, height: int = 100) -> None:
        self.height = height
        self.hashes: dict[int, str] = {}
        self.wallets: list[Wallet] = []
        self.fee_floor: float = 0

    def tip_hash(self) -> str:
        return self.hashes.get(self.height, "00" * 32)

    def mempool(self) -> dict[str, WalletTx]:
        """Every unconfirmed transaction, by txid."""
        return {
            txid: record
            for wallet in self.wallets
            for txid, record in wallet.txs.items()
            if not record.block_height
        }

    def mine(self, blocks: int = 1) -> list[str]:
        mined = []
        for _ in range(blocks):
            self.height += 1
            block_hash = hashlib.sha256(os.urandom(32)).hexdigest()
            self.hashes[self.height] = block_hash
            mined.append(block_hash)
            chosen = self._template()
            for wallet in self.wallets:
                wallet.confirm(chosen, self.height, block_hash)
        return mined

    def has_unspent(self, txid: str) -> bool:
        """Whether an output of ``txid`` is a coin of any wallet (bitcoind's UTXO set)."""
        return any(u.txid == txid for wallet in self.wallets for u in wallet.utxos)

    def package_rate(self, txid: str) -> float:
        """The fee rate (sat/vB) a miner sees for ``txid``: with its unconfirmed ancestors."""
        pool = self.mempool()
        package = _ancestors(txid, pool, set())
        return sum(pool[t].fee for t in package) / sum(pool[t].vsize for t in package)

    def _template(self) -> set[str]:
        """The txids the next block confirms."""
        pool = self.mempool()
        chosen: set[str] = set()
        changed = True
        while changed:
            changed = False
            for txid in pool:
                if txid in chosen:
                    continue
                package = _ancestors(txid, pool, chosen)
                fee = sum(pool[t].fee for t in package)
                size = sum(pool[t].vsize for t in package)
                if all(pool[t].external for t in package) or fee >= self.fee_floor * size:
                    chosen |= package
                    changed = True
        return chosen


def _ancestors(txid: str, pool: dict[str, WalletTx], chosen: set[str]) -> set[str]:
    """``txid`` and its ancestors still in ``pool`` and not in ``chosen``."""
    found, todo = set(), [txid]
    while todo:
        current = todo.pop()
        if current in found or current in chosen or current not in pool:
            continue
        found.add(current)
        todo.extend(inp.txid.hex() for inp in pool[current].tx.vin)
    return found


class Wallet:
    """A node's p2wpkh wallet: coins, sends with a change output, CPFP children,
    signatures."""

    def __init__(self, chain: Chain, secret: bytes, *, funds: int = 0, coins: int = 4) -> None:
        self.chain = chain
        self._key = ec.PrivateKey(secret)
        self._script = p2wpkh(self._key.get_public_key())
        self.utxos: list[_Utxo] = []
        self.txs: dict[str, WalletTx] = {}
        chain.wallets.append(self)
        # Several coins, as a used wallet has: one unconfirmed send does not lock them all.
        for share in _split(funds, coins):
            self.receive(share, confirmed=True)

    @property
    def script(self) -> bytes:
        return self._script.data

    def owns(self, script: bytes) -> bool:
        return script == self._script.data

    def receive(self, amount: int, *, confirmed: bool) -> WalletTx:
        """Coins from outside (a faucet): one output paying this wallet."""
        tx = Transaction(
            vin=[TransactionInput(os.urandom(32), 0, witness=None)],
            vout=[TransactionOutput(amount, self._script)],
        )
        raw = tx.serialize()
        record = WalletTx(tx.txid().hex(), raw, amount, 0, "faucet", vsize(tx), external=True)
        self.txs[record.txid] = record
        self.utxos.append(_Utxo(record.txid, 0, amount, 0))
        if confirmed:
            self.confirm_tx(record.txid, self.chain.height, self.chain.tip_hash())
        return record

    def balance(self) -> tuple[int, int]:
        """(confirmed, unconfirmed) sats."""
        confirmed = sum(u.value for u in self.utxos if u.height)
        return confirmed, sum(u.value for u in self.utxos) - confirmed

    # ------------------------------------------------------------------ sending

    def send_outputs(
        self, outputs: list[tuple[int, bytes]], *, sat_per_vbyte: float, label: str = ""
    ) -> WalletTx:
        """Pay ``outputs`` (value, pkScript) from one confirmed coin, change back to us, at
        ``sat_per_vbyte`` of the signed transaction's own size."""
        if not outputs:
            raise WalletError("must specify at least one output to create")
        for value, script in outputs:
            if value < 0:
                raise WalletError("negative output value")
            if value < _DUST and not (script and script[0] == _OP_RETURN):
                raise WalletError(f"output of {value} sats is dust")
        paid = sum(v for v, _ in outputs)
        vout = [TransactionOutput(v, Script(s)) for v, s in outputs]
        for coin in [u for u in self.utxos if u.height]:
            built = self._build([coin], vout, paid, sat_per_vbyte)
            if built is not None:
                tx, fee = built
                return self._record(tx, [coin], -(paid + fee), fee, label)
        raise WalletError("insufficient funds available to construct transaction")

    def bump_fee(
        self, outpoint: Outpoint, *, sat_per_vbyte: float, budget: int = 0
    ) -> tuple[WalletTx, bool]:
        """Spend our unconfirmed output ``outpoint`` back to the wallet at ``sat_per_vbyte``
        of the child's own size (lnd's sweeper does not count an unconfirmed wallet
        parent), adding confirmed coins if the output cannot pay it; a child already
        spending it is replaced when the new one pays more. Returns (child, replaced)."""
        txid, index = outpoint
        parent = self.txs.get(txid)
        if parent is None:
            raise WalletError(NOT_MINE)
        outs = parent.tx.vout
        if index >= len(outs):
            raise WalletError(f"invalid output index {index} for transaction with {len(outs)}")
        if not self.owns(outs[index].script_pubkey.data):
            raise WalletError(NOT_MINE)
        if parent.block_height:
            raise WalletError("unable to bump fee of a confirmed transaction")
        child = self._spender(outpoint)
        if child is None:
            coin = next((u for u in self.utxos if u.outpoint == outpoint), None)
            if coin is None:
                raise WalletError(NOT_MINE)
            return self._cpfp([coin], sat_per_vbyte, budget), False
        if child.block_height:
            raise WalletError("unable to bump fee of a confirmed transaction")
        if any(self._spender((child.txid, i)) for i in range(len(child.tx.vout))):
            raise WalletError("cannot replace a sweep that has unconfirmed children")
        coins = list(child.spends)
        draft = self._child(coins, sat_per_vbyte, budget)
        if draft is None or draft[1] <= child.fee:
            # Not worth an RBF (or not affordable): lnd keeps the sweep it has.
            return child, True
        self._forget(child)
        return self._cpfp(coins, sat_per_vbyte, budget), True

    def publish(self, raw: bytes, label: str = "") -> WalletTx:
        """Broadcast ``raw`` again, as lnd does over bitcoind: a transaction in the mempool,
        or mined with an output still unspent, is "already known" (success); a mined one
        whose outputs are all spent, or one the chain does not know, has inputs bitcoind
        cannot find, which lnd reports as a double spend."""
        txid = Transaction.parse(raw).txid().hex()
        record = self.txs.get(txid)
        if record is None:
            raise WalletError(_DOUBLE_SPEND)
        if record.block_height and not self.chain.has_unspent(txid):
            raise WalletError(_DOUBLE_SPEND)
        if label:
            record.label = label
        return record

    # ------------------------------------------------------------------ blocks

    def confirm(self, txids: set[str], height: int, block_hash: str) -> None:
        for txid in sorted(txids & self.txs.keys()):
            if not self.txs[txid].block_height:
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

    # ------------------------------------------------------------------ helpers

    def _cpfp(self, coins: list[_Utxo], sat_per_vbyte: float, budget: int) -> WalletTx:
        extra = [u for u in self.utxos if u.height and u not in coins]
        while True:
            built = self._child(coins, sat_per_vbyte, budget)
            if built is not None:
                tx, fee = built
                return self._record(tx, coins, -fee, fee, _SWEEP_LABEL)
            if not extra:
                raise WalletError("insufficient funds available to construct transaction")
            coins = [*coins, extra.pop(0)]

    def _child(
        self, coins: list[_Utxo], sat_per_vbyte: float, budget: int
    ) -> tuple[Transaction, int] | None:
        return self._build(coins, [], 0, sat_per_vbyte, max_fee=budget or None)

    def _build(
        self,
        coins: list[_Utxo],
        outputs: list[TransactionOutput],
        paid: int,
        sat_per_vbyte: float,
        *,
        max_fee: int | None = None,
    ) -> tuple[Transaction, int] | None:
        """``outputs`` plus change from ``coins``, signed, paying ``sat_per_vbyte`` of its
        own size (capped at ``max_fee``). Dust change goes to the fee, as lnd's wallet
        does; None when the coins cannot pay (or a child would have no output)."""
        total = sum(c.value for c in coins)
        fee = 0
        for _ in range(4):  # the signatures' length can change with the change amount
            change = total - paid - fee
            keep = change >= _DUST
            if change < 0 or not (keep or outputs):
                return None
            change_out = [TransactionOutput(change, self._script)] if keep else []
            tx = Transaction(
                vin=[TransactionInput(bytes.fromhex(c.txid), c.vout) for c in coins],
                vout=[*outputs, *change_out],
            )
            self._sign(tx, coins)
            wanted = math.ceil(sat_per_vbyte * vsize(tx))
            if max_fee is not None:
                wanted = max(min(wanted, max_fee), vsize(tx))
            paying = fee if keep else total - paid
            if wanted <= paying:
                return tx, paying
            fee = wanted
        return None

    def _sign(self, tx: Transaction, coins: list[_Utxo]) -> None:
        pub = self._key.get_public_key()
        for i, coin in enumerate(coins):
            sighash = tx.sighash_segwit(i, p2pkh(pub), coin.value)
            tx.vin[i].witness = witness_p2wpkh(self._key.sign(sighash), pub)

    def _record(
        self, tx: Transaction, coins: list[_Utxo], amount: int, fee: int, label: str
    ) -> WalletTx:
        record = WalletTx(
            tx.txid().hex(), tx.serialize(), amount, fee, label, vsize(tx), spends=list(coins)
        )
        for coin in coins:
            self.utxos.remove(coin)
        self.txs[record.txid] = record
        for index, out in enumerate(tx.vout):
            if self.owns(out.script_pubkey.data):
                self.utxos.append(_Utxo(record.txid, index, out.value, 0))
        return record

    def _forget(self, record: WalletTx) -> None:
        """Drop an unconfirmed transaction (replaced): its coins are ours again."""
        del self.txs[record.txid]
        self.utxos = [u for u in self.utxos if u.txid != record.txid]
        self.utxos.extend(record.spends)

    def _spender(self, outpoint: Outpoint) -> WalletTx | None:
        return next(
            (r for r in self.txs.values() if any(c.outpoint == outpoint for c in r.spends)),
            None,
        )


def _split(amount: int, parts: int) -> list[int]:
    if amount <= 0:
        return []
    parts = max(1, min(parts, amount // _DUST or 1))
    share = amount // parts
    return [share] * (parts - 1) + [amount - share * (parts - 1)]
