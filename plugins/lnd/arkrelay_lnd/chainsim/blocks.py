"""Blocks of the simulated chain: real 80-byte headers (regtest difficulty, a nonce found
by grinding, two tries on average), merkle roots of their transactions, median time past
(BIP 113)."""

from __future__ import annotations

import math
import statistics

import msgspec
from embit import hashes
from embit.transaction import Transaction

__all__ = ["Block", "make_block", "merkle_root", "vsize", "weight", "wtxid"]

#: Regtest's proof-of-work limit in compact form (chainparams.cpp, powLimit).
REGTEST_BITS = 0x207FFFFF
#: Version bits' top bits, as every block since BIP 9 carries.
BLOCK_VERSION = 0x20000000


class Block(msgspec.Struct):
    height: int
    hash: str
    prev: str
    time: int
    merkle_root: str
    nonce: int
    #: Transactions in block order, raw hex (the state file keeps them this way).
    txs: list[str]
    mediantime: int = 0
    bits: int = REGTEST_BITS
    version: int = BLOCK_VERSION


def make_block(height: int, prev: str, time: int, raws: list[bytes], mediantime: int) -> Block:
    txids = [Transaction.parse(raw).txid() for raw in raws]
    root = merkle_root(txids)
    target = (REGTEST_BITS & 0xFFFFFF) << (8 * ((REGTEST_BITS >> 24) - 3))
    start = (
        BLOCK_VERSION.to_bytes(4, "little")
        + bytes.fromhex(prev)[::-1]
        + root[::-1]
        + time.to_bytes(4, "little")
        + REGTEST_BITS.to_bytes(4, "little")
    )
    nonce = 0
    while True:
        digest = hashes.double_sha256(start + nonce.to_bytes(4, "little"))
        if int.from_bytes(digest, "little") <= target:
            break
        nonce += 1
    return Block(
        height=height,
        hash=digest[::-1].hex(),
        prev=prev,
        time=time,
        merkle_root=root.hex(),
        nonce=nonce,
        txs=[raw.hex() for raw in raws],
        mediantime=mediantime,
    )


def merkle_root(txids: list[bytes]) -> bytes:
    """The merkle root of ``txids`` (display order in and out); zeros for no transaction."""
    if not txids:
        return bytes(32)
    level = [t[::-1] for t in txids]
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [hashes.double_sha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0][::-1]


def median_time(times: list[int]) -> int:
    """The middle of the last eleven block times, the later one of two (BIP 113)."""
    return int(statistics.median_high(times[-11:]))


def weight(tx: Transaction) -> int:
    """BIP 141 weight: the stripped size counted four times, witnesses once."""
    full = len(tx.serialize())
    if not tx.is_segwit:
        return full * 4
    witness = sum(len(inp.witness.serialize()) for inp in tx.vin)
    stripped = full - 2 - witness  # no marker, flag or witnesses
    return stripped * 3 + full


def vsize(tx: Transaction) -> int:
    """Virtual size in vbytes: weight / 4, rounded up (BIP 141)."""
    return math.ceil(weight(tx) / 4)


def wtxid(raw: bytes) -> str:
    return hashes.double_sha256(raw)[::-1].hex()
