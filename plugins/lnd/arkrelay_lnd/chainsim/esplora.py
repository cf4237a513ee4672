"""Esplora's JSON shapes (Blockstream's esplora API, as electrs and mempool serve them),
rendered from the ledger."""

from __future__ import annotations

import msgspec
from embit.transaction import Transaction

from .blocks import Block
from .ledger import Entry, Ledger
from .outputs import address_of, asm, esplora_type

__all__ = ["address_json", "block_json", "outspend_json", "status_json", "tx_json", "utxo_json"]


class Status(msgspec.Struct, omit_defaults=True):
    confirmed: bool
    block_height: int | None = None
    block_hash: str | None = None
    block_time: int | None = None


class Output(msgspec.Struct, omit_defaults=True):
    scriptpubkey: str
    scriptpubkey_asm: str
    scriptpubkey_type: str
    value: int
    scriptpubkey_address: str | None = None


class Input(msgspec.Struct):
    txid: str
    vout: int
    prevout: Output | None
    scriptsig: str
    scriptsig_asm: str
    witness: list[str]
    is_coinbase: bool
    sequence: int


class Tx(msgspec.Struct):
    txid: str
    version: int
    locktime: int
    vin: list[Input]
    vout: list[Output]
    size: int
    weight: int
    fee: int
    status: Status


class Utxo(msgspec.Struct):
    txid: str
    vout: int
    status: Status
    value: int


class Outspend(msgspec.Struct, omit_defaults=True):
    spent: bool
    txid: str | None = None
    vin: int | None = None
    status: Status | None = None


class BlockJson(msgspec.Struct):
    id: str
    height: int
    version: int
    timestamp: int
    tx_count: int
    size: int
    weight: int
    merkle_root: str
    previousblockhash: str | None
    mediantime: int
    nonce: int
    bits: int
    difficulty: float


def status_json(ledger: Ledger, entry: Entry) -> Status:
    block = ledger.block_of(entry)
    if block is None:
        return Status(confirmed=False)
    return Status(True, block.height, block.hash, block.time)


def _output(script: bytes, value: int) -> Output:
    return Output(
        scriptpubkey=script.hex(),
        scriptpubkey_asm=asm(script),
        scriptpubkey_type=esplora_type(script),
        value=value,
        scriptpubkey_address=address_of(script),
    )


def tx_json(ledger: Ledger, entry: Entry) -> Tx:
    vin = []
    for index, inp in enumerate(entry.tx.vin):
        prevout = None
        if not entry.coinbase:
            spent = entry.spent[index]
            prevout = _output(spent.script_pubkey.data, spent.value)
        vin.append(
            Input(
                txid=inp.txid.hex(),
                vout=inp.vout,
                prevout=prevout,
                scriptsig=inp.script_sig.data.hex(),
                scriptsig_asm=asm(inp.script_sig.data),
                witness=[item.hex() for item in inp.witness.items],
                is_coinbase=entry.coinbase,
                sequence=inp.sequence,
            )
        )
    return Tx(
        txid=entry.txid,
        version=entry.tx.version,
        locktime=entry.tx.locktime,
        vin=vin,
        vout=[_output(o.script_pubkey.data, o.value) for o in entry.tx.vout],
        size=len(entry.raw),
        weight=entry.weight,
        fee=entry.fee,
        status=status_json(ledger, entry),
    )


def utxo_json(ledger: Ledger, entry: Entry, index: int) -> Utxo:
    return Utxo(entry.txid, index, status_json(ledger, entry), entry.tx.vout[index].value)


def outspend_json(ledger: Ledger, txid: str, index: int) -> Outspend:
    found = ledger.spender((txid, index))
    if found is None:
        return Outspend(spent=False)
    spender, vin = found
    return Outspend(True, spender.txid, vin, status_json(ledger, spender))


def block_json(ledger: Ledger, block: Block) -> BlockJson:
    raws = [bytes.fromhex(t) for t in block.txs]
    entries = [ledger.txs[Transaction.parse(r).txid().hex()] for r in raws]
    size = 80 + 1 + sum(len(r) for r in raws)
    return BlockJson(
        id=block.hash,
        height=block.height,
        version=block.version,
        timestamp=block.time,
        tx_count=len(raws),
        size=size,
        weight=80 * 4 + 4 + sum(e.weight for e in entries),
        merkle_root=block.merkle_root,
        previousblockhash=block.prev if block.height else None,
        mediantime=block.mediantime,
        nonce=block.nonce,
        bits=block.bits,
        difficulty=4.656542373906925e-10,
    )


class Stats(msgspec.Struct):
    funded_txo_count: int = 0
    funded_txo_sum: int = 0
    spent_txo_count: int = 0
    spent_txo_sum: int = 0
    tx_count: int = 0


class Address(msgspec.Struct):
    address: str
    chain_stats: Stats
    mempool_stats: Stats


def address_json(ledger: Ledger, address: str, script: bytes) -> Address:
    """Esplora's ``/address/:address`` summary: what was paid to and spent from the
    address, confirmed and in the mempool."""
    chain, pool = Stats(), Stats()
    for entry in ledger.history(script):
        stats = chain if entry.height else pool
        stats.tx_count += 1
        for out in entry.tx.vout:
            if out.script_pubkey.data == script:
                stats.funded_txo_count += 1
                stats.funded_txo_sum += out.value
        for out in entry.spent:
            if out.script_pubkey.data == script:
                stats.spent_txo_count += 1
                stats.spent_txo_sum += out.value
    return Address(address, chain, pool)
