"""The simulated chain's state: blocks, every transaction it has seen, the UTXO set, the
mempool, and the admission rules a transaction or a package must pass (``policy``).

Blocks are mined on demand and take the whole mempool: admission already holds every
transaction to the fee floor, alone or with its package, so a miner scoring packages
(as the lnd simulator's chain does) would take them all too. Coins enter from outside
through ``faucet``, each in a block of its own.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from . import policy
from .blocks import Block, make_block, median_time
from .entry import Entry, Outpoint
from .errors import ALREADY_IN_CHAIN, Refusal

__all__ = ["BLOCK_SPACING", "Entry", "Ledger", "Outpoint"]

#: Seconds between the timestamps of consecutive mined blocks (or now, if later), so
#: that time-based relative locks (BIP 68) mature as blocks are mined, as on mainnet.
BLOCK_SPACING = 600
#: 21 million bitcoin (consensus/amount.h MAX_MONEY).
MAX_MONEY = 21_000_000 * 100_000_000


class _State(msgspec.Struct):
    blocks: list[Block]
    mempool: list[str]


class Ledger:
    """The chain. ``fee_floor`` is bitcoind's -minrelaytxfee in sat/vB."""

    def __init__(
        self,
        *,
        fee_floor: float = 1.0,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fee_floor = fee_floor
        self.state_file = state_file
        self._clock = clock
        self.blocks: list[Block] = []
        self.by_hash: dict[str, int] = {}
        self.txs: dict[str, Entry] = {}
        self.mempool: dict[str, Entry] = {}
        self.spenders: dict[Outpoint, tuple[str, int]] = {}
        self.by_script: dict[bytes, list[str]] = {}
        if state_file is not None and state_file.exists():
            self._load(msgspec.json.decode(state_file.read_bytes(), type=_State))
        else:
            now = int(clock())
            self._append(make_block(0, "00" * 32, now, [], now))

    # ------------------------------------------------------------------ reading

    @property
    def tip(self) -> Block:
        return self.blocks[-1]

    @property
    def height(self) -> int:
        return self.tip.height

    def block_of(self, entry: Entry) -> Block | None:
        return self.blocks[entry.height] if entry.height else None

    def utxos(self, script: bytes) -> list[tuple[Entry, int]]:
        """(transaction, output index) of every unspent output paying ``script``,
        mempool ones included, spent-in-mempool ones left out (as Esplora lists them)."""
        found = []
        for txid in self.by_script.get(script, []):
            entry = self.txs[txid]
            for index, out in enumerate(entry.tx.vout):
                if out.script_pubkey.data == script and (txid, index) not in self.spenders:
                    found.append((entry, index))
        return found

    def history(self, script: bytes) -> list[Entry]:
        """Transactions paying or spending ``script``: mempool ones first, then the
        confirmed, newest first."""
        entries = [self.txs[t] for t in self.by_script.get(script, [])]
        return sorted(entries, key=lambda e: (e.height != 0, -e.height, -e.seen))

    def spender(self, outpoint: Outpoint) -> tuple[Entry, int] | None:
        found = self.spenders.get(outpoint)
        return None if found is None else (self.txs[found[0]], found[1])

    def fee_rate(self) -> float:
        return self.fee_floor

    # ------------------------------------------------------------------ writing

    def faucet(self, script: bytes, amount: int) -> Outpoint:
        """Coins from outside the simulation: a transaction paying ``amount`` to
        ``script``, confirmed in a new block of its own. Shaped like a coinbase (no
        prevout; bitcoind's 100-block coinbase maturity is not applied to it)."""
        if not 0 < amount <= MAX_MONEY:
            raise Refusal("bad-txns-vout-toolarge" if amount > 0 else "bad-txns-vout-negative")
        height = self.height + 1
        tag = Script(bytes([3]) + height.to_bytes(3, "little"))
        tx = Transaction(
            version=2,
            vin=[TransactionInput(bytes(32), 0xFFFFFFFF, script_sig=tag)],
            vout=[TransactionOutput(amount, Script(script))],
        )
        self._mine_block([Entry(tx, tx.serialize(), tx.txid().hex(), [], 0)])
        self._save()
        return tx.txid().hex(), 0

    def mine(self, blocks: int = 1) -> list[Block]:
        """Mine ``blocks`` blocks; the first takes the whole mempool."""
        mined = []
        for _ in range(blocks):
            mined.append(self._mine_block(list(self.mempool.values())))
        self._save()
        return mined

    def submit(self, raw: bytes) -> str:
        """Admit one transaction (``sendrawtransaction``); its txid, or Refusal."""
        txid = policy.decode(raw).txid().hex()
        if txid in self.mempool:
            return txid
        known = self.txs.get(txid)
        if known is not None and any(
            (txid, i) not in self.spenders for i in range(len(known.tx.vout))
        ):
            raise Refusal("Transaction outputs already in utxo set", ALREADY_IN_CHAIN)
        entry = policy.check(self, raw, {})
        policy.check_truc(self, entry, {})
        needed = self.min_fee(entry.vsize)
        if entry.fee < needed:
            raise Refusal(f"min relay fee not met, {entry.fee} < {needed}")
        policy.check_scripts(entry)
        self._add(entry)
        self._save()
        return txid

    def submit_package(self, raws: list[bytes]) -> list[Entry]:
        """Admit a child with its parents (``submitpackage``): each transaction alone when
        it pays the fee floor itself, the rest together when their summed fees pay it
        for their summed size (CPFP). Returns every transaction of the package."""
        txs = [policy.decode(raw) for raw in raws]
        policy.check_topology(txs)
        pending: dict[str, Entry] = {}
        done: list[Entry] = []
        for raw, tx in zip(raws, txs, strict=True):
            txid = tx.txid().hex()
            if txid in self.mempool:
                done.append(self.mempool[txid])
                continue
            entry = policy.check(self, raw, pending)
            policy.check_truc(self, entry, pending)
            needed = self.min_fee(entry.vsize)
            if entry.fee < needed and entry.tx.version != policy.TRUC_VERSION:
                # Only TRUC transactions may rely on a child to pay (bitcoind 28).
                raise Refusal(f"min relay fee not met, {entry.fee} < {needed}")
            if entry.fee >= needed and not entry.parents() & pending.keys():
                policy.check_scripts(entry)
                self._add(entry)
            else:
                pending[txid] = entry
            done.append(entry)
        if pending:
            fee = sum(e.fee for e in pending.values())
            size = sum(e.vsize for e in pending.values())
            needed = self.min_fee(size)
            if fee < needed:
                raise Refusal(f"min relay fee not met, {fee} < {needed}")
            policy.check_ephemeral_spends(list(pending.values()))
            for entry in pending.values():
                policy.check_scripts(entry)
            for entry in pending.values():
                self._add(entry)
        self._save()
        return done

    def min_fee(self, size: int) -> int:
        """bitcoind's ``CFeeRate::GetFee``: the floor's fee for ``size`` vbytes, rounded
        up, at least 1 sat under a non-zero floor."""
        per_kvb = round(self.fee_floor * 1000)
        fee = math.ceil(per_kvb * size / 1000)
        return max(fee, 1) if per_kvb > 0 and size else fee

    def median_time_past(self, height: int | None = None) -> int:
        top = self.height if height is None else height
        return median_time([b.time for b in self.blocks[max(0, top - 10) : top + 1]])

    # ------------------------------------------------------------------ internals

    def _add(self, entry: Entry) -> None:
        self.txs[entry.txid] = entry
        if not entry.height:
            self.mempool[entry.txid] = entry
        for index, inp in enumerate(entry.tx.vin):
            if not entry.coinbase:
                self.spenders[(inp.txid.hex(), inp.vout)] = (entry.txid, index)
        scripts = {o.script_pubkey.data for o in entry.tx.vout}
        scripts |= {o.script_pubkey.data for o in entry.spent}
        for script in scripts:
            listed = self.by_script.setdefault(script, [])
            if entry.txid not in listed:
                listed.append(entry.txid)

    def _mine_block(self, entries: list[Entry]) -> Block:
        height = self.height + 1
        stamp = max(int(self._clock()), self.tip.time + BLOCK_SPACING)
        past = median_time([b.time for b in self.blocks[-10:]] + [stamp])
        block = make_block(height, self.tip.hash, stamp, [e.raw for e in entries], past)
        self._append(block)
        for entry in entries:
            self.mempool.pop(entry.txid, None)
            entry.height = height
            if entry.txid not in self.txs:
                self._add(entry)
        return block

    def _append(self, block: Block) -> None:
        self.blocks.append(block)
        self.by_hash[block.hash] = block.height

    def _outputs_of(self, tx: Transaction) -> list[TransactionOutput]:
        if all(inp.txid == bytes(32) for inp in tx.vin):
            return []
        return [self.txs[inp.txid.hex()].tx.vout[inp.vout] for inp in tx.vin]

    def _load(self, state: _State) -> None:
        for block in state.blocks:
            self._append(block)
            for raw_hex in block.txs:
                raw = bytes.fromhex(raw_hex)
                tx = Transaction.parse(raw)
                spent = self._outputs_of(tx)
                fee = sum(o.value for o in spent) - sum(o.value for o in tx.vout) if spent else 0
                self._add(Entry(tx, raw, tx.txid().hex(), spent, fee, height=block.height))
        for raw_hex in state.mempool:
            raw = bytes.fromhex(raw_hex)
            tx = Transaction.parse(raw)
            spent = self._outputs_of(tx)
            fee = sum(o.value for o in spent) - sum(o.value for o in tx.vout)
            self._add(Entry(tx, raw, tx.txid().hex(), spent, fee))

    def _save(self) -> None:
        if self.state_file is None:
            return
        state = _State(self.blocks, [e.raw.hex() for e in self.mempool.values()])
        partial = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        partial.write_bytes(msgspec.json.encode(state))
        os.replace(partial, self.state_file)
