"""bitcoind's mempool admission rules, each refusal with its reject reason, in the order
validation.cpp ``MemPoolAccept::PreChecks`` applies them (bitcoind 29.0): transaction
sanity, standardness (policy/policy.cpp), finality, conflicts, missing inputs, BIP 68,
input values, TRUC (policy/truc_policy.cpp), ephemeral dust (policy/ephemeral_policy.cpp),
then the scripts (``CheckInputScripts``). Fees are the ledger's: they depend on whether
the transaction comes alone or in a package.
"""

from __future__ import annotations

from typing import Protocol

from embit.transaction import Transaction, TransactionOutput

from .blocks import weight
from .entry import Entry, Outpoint
from .errors import DESERIALIZATION, MISSING_INPUTS, Refusal
from .outputs import P2A_SCRIPT, dust_threshold, standard, witness_program
from .scripts import (
    LOCKTIME_THRESHOLD,
    SEQUENCE_DISABLE,
    SEQUENCE_FINAL,
    SEQUENCE_MASK,
    SEQUENCE_TYPE_TIME,
    verify_input,
)


class ChainView(Protocol):
    """What the rules read of the chain (the ledger, without importing it)."""

    txs: dict[str, Entry]
    mempool: dict[str, Entry]
    spenders: dict[Outpoint, tuple[str, int]]

    @property
    def height(self) -> int: ...

    def median_time_past(self, height: int | None = None) -> int: ...


__all__ = [
    "TRUC_VERSION",
    "check",
    "check_ephemeral_spends",
    "check_scripts",
    "check_topology",
    "check_truc",
    "decode",
]

TRUC_VERSION = 3
MAX_STANDARD_WEIGHT = 400_000
MIN_NONWITNESS_SIZE = 65
MAX_SCRIPTSIG_SIZE = 1650
TRUC_MAX_VSIZE = 10_000
TRUC_CHILD_MAX_VSIZE = 1_000
MAX_PACKAGE_COUNT = 25


def decode(raw: bytes) -> Transaction:
    try:
        tx = Transaction.parse(raw)
    except Exception as exc:  # embit raises bare errors of several types on bad bytes
        raise Refusal(
            "TX decode failed. Make sure the tx has at least one input.", DESERIALIZATION
        ) from exc
    if tx.serialize() != raw:
        raise Refusal("TX decode failed. Make sure the tx has at least one input.", DESERIALIZATION)
    return tx


def check_topology(txs: list[Transaction]) -> None:
    """``submitpackage`` takes a child and its parents only: the last transaction spends
    every other, which do not spend each other (policy/packages.cpp)."""
    if not 1 <= len(txs) <= MAX_PACKAGE_COUNT:
        raise Refusal("package-too-many-transactions", MISSING_INPUTS)
    parents = {tx.txid().hex() for tx in txs[:-1]}
    child_spends = {inp.txid.hex() for inp in txs[-1].vin}
    among = [inp.txid.hex() in parents for tx in txs[:-1] for inp in tx.vin]
    if not parents <= child_spends or any(among):
        raise Refusal(
            "package topology disallowed. not child-with-parents or parents depend on each other.",
            MISSING_INPUTS,
        )


def check(ledger: ChainView, raw: bytes, pending: dict[str, Entry]) -> Entry:
    """Every rule before the fee and script checks; the admitted-to-be entry with its
    fee. ``pending`` holds earlier transactions of the same package, not yet admitted."""

    tx = decode(raw)
    txid = tx.txid().hex()
    _sanity(tx)
    _standard(tx)
    _final(ledger, tx)
    spent: list[TransactionOutput] = []
    heights: list[int] = []
    missing = False
    for inp in tx.vin:
        outpoint = (inp.txid.hex(), inp.vout)
        spender = ledger.spenders.get(outpoint)
        in_package = any(
            (i.txid.hex(), i.vout) == outpoint for e in pending.values() for i in e.tx.vin
        )
        if in_package or (spender is not None and spender[0] in ledger.mempool):
            raise Refusal("txn-mempool-conflict")
        source = pending.get(outpoint[0]) or ledger.txs.get(outpoint[0])
        if spender is not None or source is None or inp.vout >= len(source.tx.vout):
            missing = True
            continue
        spent.append(source.tx.vout[inp.vout])
        heights.append(source.height)
    if missing:
        raise Refusal("bad-txns-inputs-missingorspent", MISSING_INPUTS)
    _sequence_locks(ledger, tx, heights)
    value_in = sum(o.value for o in spent)
    value_out = sum(o.value for o in tx.vout)
    if value_in < value_out:
        raise Refusal(
            f"bad-txns-in-belowout, value in ({_money(value_in)}) < value out ({_money(value_out)})"
        )
    _witness_standard(tx, spent)
    entry = Entry(tx, raw, txid, spent, value_in - value_out)
    if _dust(tx) and entry.fee:
        raise Refusal("dust, tx with dust output must be 0-fee")
    return entry


def check_truc(ledger: ChainView, entry: Entry, pending: dict[str, Entry]) -> None:
    """Topologically restricted until confirmation (BIP 431, policy/truc_policy.cpp): a
    version 3 transaction has at most one unconfirmed parent and one unconfirmed child,
    both version 3, and the child is small. Sibling eviction is not modelled: a second
    child is refused."""

    def unconfirmed(txid: str) -> Entry | None:
        return pending.get(txid) or ledger.mempool.get(txid)

    parents = [p for p in (unconfirmed(t) for t in sorted(entry.parents())) if p is not None]
    me = f"{entry.txid} (wtxid={entry.wtxid})"
    if entry.tx.version != TRUC_VERSION:
        for parent in parents:
            if parent.tx.version == TRUC_VERSION:
                raise Refusal(
                    f"TRUC-violation, non-version=3 tx {me} cannot spend from version=3 tx "
                    f"{parent.txid} (wtxid={parent.wtxid})"
                )
        return
    if entry.vsize > TRUC_MAX_VSIZE:
        raise Refusal(
            f"TRUC-violation, version=3 tx {me} is too big: {entry.vsize} > "
            f"{TRUC_MAX_VSIZE} virtual bytes"
        )
    for parent in parents:
        if parent.tx.version != TRUC_VERSION:
            raise Refusal(
                f"TRUC-violation, version=3 tx {me} cannot spend from non-version=3 tx "
                f"{parent.txid} (wtxid={parent.wtxid})"
            )
    if not parents:
        return
    grandparents = [t for t in parents[0].parents() if unconfirmed(t) is not None]
    if len(parents) > 1 or grandparents:
        raise Refusal(f"TRUC-violation, tx {me} would have too many ancestors")
    if entry.vsize > TRUC_CHILD_MAX_VSIZE:
        raise Refusal(
            f"TRUC-violation, version=3 child tx {me} is too big: {entry.vsize} > "
            f"{TRUC_CHILD_MAX_VSIZE} virtual bytes"
        )
    parent = parents[0]
    siblings = [
        spender
        for index in range(len(parent.tx.vout))
        if (spender := ledger.spenders.get((parent.txid, index))) is not None
        and spender[0] in ledger.mempool
    ]
    if siblings:
        raise Refusal(
            f"TRUC-violation, tx {parent.txid} (wtxid={parent.wtxid}) would exceed "
            "descendant count limit"
        )


def check_ephemeral_spends(entries: list[Entry]) -> None:
    """A transaction's dust output must be spent by its child in the same package
    (bitcoind 29 ephemeral dust: the zero-fee parent of a P2A anchor spend)."""
    spent = {(i.txid.hex(), i.vout) for e in entries for i in e.tx.vin}
    for parent in entries:
        for index in _dust(parent.tx):
            if (parent.txid, index) not in spent:
                child = next((e for e in entries if parent.txid in e.parents()), None)
                who = f"{child.txid} (wtxid={child.wtxid})" if child else parent.txid
                raise Refusal(
                    f"missing-ephemeral-spends, tx {who} did not spend parent's ephemeral dust"
                )


def check_scripts(entry: Entry) -> None:
    """Every input's script (raises ScriptFailure, a Refusal)."""
    for index in range(len(entry.tx.vin)):
        verify_input(entry.tx, index, entry.spent)


# ---------------------------------------------------------------------------- rules


def _sanity(tx: Transaction) -> None:
    """consensus/tx_check.cpp ``CheckTransaction``, and the coinbase refusal."""
    if not tx.vin:
        raise Refusal("bad-txns-vin-empty")
    if not tx.vout:
        raise Refusal("bad-txns-vout-empty")
    total = 0
    for out in tx.vout:
        if out.value < 0:
            raise Refusal("bad-txns-vout-negative")
        total += out.value
        if out.value > 21_000_000 * 100_000_000 or total > 21_000_000 * 100_000_000:
            raise Refusal("bad-txns-txouttotal-toolarge")
    outpoints = [(i.txid, i.vout) for i in tx.vin]
    if len(set(outpoints)) != len(outpoints):
        raise Refusal("bad-txns-inputs-duplicate")
    if any(i.txid == bytes(32) and i.vout == 0xFFFFFFFF for i in tx.vin):
        raise Refusal("coinbase" if len(tx.vin) == 1 else "bad-txns-prevout-null")


def _standard(tx: Transaction) -> None:
    """policy/policy.cpp ``IsStandardTx`` and the minimum size."""
    if not 1 <= tx.version <= TRUC_VERSION:
        raise Refusal("version")
    if weight(tx) > MAX_STANDARD_WEIGHT:
        raise Refusal("tx-size")
    for inp in tx.vin:
        if len(inp.script_sig.data) > MAX_SCRIPTSIG_SIZE:
            raise Refusal("scriptsig-size")
    returns = 0
    for out in tx.vout:
        script = out.script_pubkey.data
        if not standard(script):
            raise Refusal("scriptpubkey")
        returns += bool(script[:1] == b"\x6a")
    if returns > 1:
        raise Refusal("multi-op-return")
    if len(_dust(tx)) > 1:
        raise Refusal("dust")
    stripped = weight(tx) // 4 if not tx.is_segwit else (weight(tx) - len(tx.serialize())) // 3
    if stripped < MIN_NONWITNESS_SIZE:
        raise Refusal("tx-size-small")


def _dust(tx: Transaction) -> list[int]:
    return [
        i for i, out in enumerate(tx.vout) if out.value < dust_threshold(out.script_pubkey.data)
    ]


def _final(ledger: ChainView, tx: Transaction) -> None:
    """``IsFinalTx`` for the next block: its height, and the tip's median time past."""
    locktime = tx.locktime
    if locktime == 0:
        return
    limit = ledger.height + 1 if locktime < LOCKTIME_THRESHOLD else ledger.median_time_past()
    if locktime < limit or all(i.sequence == SEQUENCE_FINAL for i in tx.vin):
        return
    raise Refusal("non-final")


def _sequence_locks(ledger: ChainView, tx: Transaction, heights: list[int]) -> None:
    """BIP 68 for the next block (``CheckSequenceLocksAtTip``): a coin still in the
    mempool counts as mined in that block."""
    if tx.version < 2:
        return
    next_height = ledger.height + 1
    for inp, height in zip(tx.vin, heights, strict=True):
        sequence = inp.sequence
        if sequence & SEQUENCE_DISABLE:
            continue
        coin_height = height or next_height
        if sequence & SEQUENCE_TYPE_TIME:
            coin_time = ledger.median_time_past(max(coin_height - 1, 0))
            ready = coin_time + ((sequence & SEQUENCE_MASK) << 9) - 1 < ledger.median_time_past()
        else:
            ready = coin_height + (sequence & SEQUENCE_MASK) - 1 < next_height
        if not ready:
            raise Refusal("non-BIP68-final")


def _witness_standard(tx: Transaction, spent: list[TransactionOutput]) -> None:
    """policy/policy.cpp ``IsWitnessStandard``: no witness for an anchor, no annex, a
    bounded witness script."""
    for inp, out in zip(tx.vin, spent, strict=True):
        script = out.script_pubkey.data
        items = list(inp.witness.items)
        program = witness_program(script)
        bad = (
            (script == P2A_SCRIPT and items)
            or (
                program is not None
                and program[0] == 1
                and len(program[1]) == 32
                and len(items) >= 2
                and items[-1][:1] == b"\x50"
            )
            or (
                program is not None
                and program[0] == 0
                and len(program[1]) == 32
                and items
                and len(items[-1]) > 3600
            )
        )
        if bad:
            raise Refusal("bad-witness-nonstandard")


def _money(sats: int) -> str:
    """bitcoind's ``FormatMoney``: 8 decimals, trailing zeros cut down to two."""
    text = f"{sats // 100_000_000}.{sats % 100_000_000:08d}"
    while text.endswith("0") and len(text.split(".")[1]) > 2:
        text = text[:-1]
    return text
