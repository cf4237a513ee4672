"""A batch's transactions: the commitment tx, its VTXO tree and its connector tree.

arkd v0.9.15's covenantless tx builder (``BuildCommitmentTx``, ``createCommitmentTx``):
outputs are the batch output (0, the VTXO tree's root key) when some intent pays
offchain, the connector output (1) when VTXOs are forfeited, the on-chain outputs intents
asked for, then the server wallet's change; inputs are the server wallet's coins, then the
boarding coins. Version 2, sequences final, every input with its witness utxo and no leaf
script (the boarding owner adds the leaf it signs). The server pays the mining fee from
its wallet at the chain's next-block fee rate.

Finalizing puts the signatures in: the server wallet signs its coins by key path; a
boarding coin is spent through its collaborative leaf with the owner's and the server's
signatures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from embit.psbt import PSBT
from embit.script import Script, Witness
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from arkrelay_core.nostr import bip340

from .. import arktx
from ..tapscript import LEAF_VERSION, multisig_keys
from .esplora import Utxo
from .intents import Intent
from .txtree import CONNECTOR_RADIX, VTXO_RADIX, Leaf, TreeTx, batch_output, build_tree
from .wallet import InsufficientFunds, ServerWallet, vsize_estimate

__all__ = ["BatchTxs", "LeafSignatures", "build_batch", "finalize_commitment", "needs_forfeit"]

COMMITMENT_VERSION = 2
SEQUENCE_FINAL = 0xFFFFFFFF


@dataclasses.dataclass
class BatchTxs:
    commitment: PSBT
    vtxo_tree: TreeTx | None
    connector_tree: TreeTx | None
    batch_output: tuple[bytes, int] | None
    wallet_inputs: list[Utxo]
    #: boarding outpoint -> its input index in the commitment tx
    boarding_index: dict[str, int]

    @property
    def txid(self) -> str:
        return self.commitment.tx.txid().hex()


def needs_forfeit(amount: int, swept: bool, recoverable: bool, dust: int) -> bool:
    """A VTXO the server must be able to claim (a connector and a forfeit tx): neither swept,
    nor expired, nor below dust (those the owner cannot exit with anyway)."""
    return not swept and not recoverable and amount >= dust


def build_batch(
    intents: Sequence[Intent],
    *,
    signer_key: bytes,
    sweep_root: bytes,
    vtxo_tree_expiry: int,
    connectors: int,
    wallet: ServerWallet,
    dust: int,
    fee_rate: float,
) -> BatchTxs:
    leaves = [
        Leaf(
            tuple((r.script, r.amount) for r in intent.receivers if not r.onchain),
            (*intent.cosigners, signer_key),
        )
        for intent in intents
        if intent.has_offchain_outputs()
    ]
    outputs: list[tuple[bytes, int]] = []
    vtxo_output = batch_output(leaves, sweep_root, VTXO_RADIX) if leaves else None
    if vtxo_output is not None:
        outputs.append(vtxo_output)
    onchain = [(r.script, r.amount) for i in intents for r in i.receivers if r.onchain]
    connector_leaves = [
        Leaf(((wallet.pk_script, dust),), (b"\x02" + wallet.xonly,)) for _ in range(connectors)
    ]
    if connector_leaves:
        if not outputs:
            # The connector output must be output 1: an on-chain output takes slot 0.
            if not onchain:
                raise ValueError("onchain outputs required")
            outputs.append(onchain.pop(0))
        outputs.append(batch_output(connector_leaves, None, CONNECTOR_RADIX))
    outputs.extend(onchain)

    boarding = [b for i in intents for b in i.boarding]
    boarding_total = sum(b.amount for b in boarding)
    target = sum(a for _, a in outputs) - boarding_total

    scripts = [s for s, _ in outputs]
    picked = _fund(wallet, target, fee_rate, len(boarding), scripts)
    try:
        fee = _fee(fee_rate, len(picked), len(boarding), scripts, wallet.pk_script)
        change = sum(u.value for u in picked) - target - fee
        if change > dust:
            outputs.append((wallet.pk_script, change))
        psbt = _psbt(
            [(u.txid, u.vout, wallet.pk_script, u.value) for u in picked]
            + [(b.txid, b.vout, b.pk_script, b.amount) for b in boarding],
            outputs,
        )
        txid = psbt.tx.txid().hex()
        return BatchTxs(
            commitment=psbt,
            vtxo_tree=build_tree(leaves, sweep_root, VTXO_RADIX, (txid, 0), vtxo_tree_expiry)
            if leaves
            else None,
            connector_tree=build_tree(connector_leaves, None, CONNECTOR_RADIX, (txid, 1), None)
            if connector_leaves
            else None,
            batch_output=vtxo_output,
            wallet_inputs=picked,
            boarding_index={b.outpoint: len(picked) + n for n, b in enumerate(boarding)},
        )
    except BaseException:
        wallet.release(picked)
        raise


def _fund(
    wallet: ServerWallet, target: int, fee_rate: float, boarding: int, scripts: list[bytes]
) -> list[Utxo]:
    """Server coins paying ``target`` plus the fee of the tx with them in."""
    picked: list[Utxo] = []
    for _ in range(5):
        fee = _fee(fee_rate, max(1, len(picked)), boarding, scripts, wallet.pk_script)
        if picked and sum(u.value for u in picked) >= target + fee:
            return picked
        wallet.release(picked)
        picked = wallet.reserve(max(1, target + fee))
    wallet.release(picked)
    raise InsufficientFunds("cannot settle on a fee for the commitment tx")


def _fee(
    rate: float, wallet_inputs: int, boarding: int, scripts: list[bytes], change: bytes
) -> int:
    return math.ceil(rate * vsize_estimate(wallet_inputs, boarding, [*scripts, change]))


def _psbt(
    inputs: Sequence[tuple[str, int, bytes, int]], outputs: Sequence[tuple[bytes, int]]
) -> PSBT:
    """The unsigned commitment tx: (txid, vout, script, sats) in, (script, sats) out."""
    tx = Transaction(
        version=COMMITMENT_VERSION,
        vin=[
            TransactionInput(bytes.fromhex(t), v, sequence=SEQUENCE_FINAL) for t, v, _, _ in inputs
        ],
        vout=[TransactionOutput(a, Script(s)) for s, a in outputs],
        locktime=0,
    )
    psbt = PSBT(tx, unknown={})
    for inp, (_, _, script, amount) in zip(psbt.inputs, inputs, strict=True):
        inp.witness_utxo = TransactionOutput(amount, Script(script))
        inp.unknown = {}
    return psbt


@dataclasses.dataclass(frozen=True)
class LeafSignatures:
    """An owner's signatures on one boarding input: the leaf it spends and x-only -> sig."""

    control: bytes
    script: bytes
    signatures: dict[bytes, bytes]


def finalize_commitment(
    txs: BatchTxs,
    boarding: dict[int, LeafSignatures],
    wallet: ServerWallet,
    signer_secret: bytes,
) -> Transaction:
    """The broadcastable commitment tx: each boarding input spent through its leaf with the
    owner's signatures and the server's, the wallet's coins by key path."""
    psbt = PSBT.parse(txs.commitment.serialize())
    tx = Transaction.parse(psbt.tx.serialize())
    prevouts = [(i.witness_utxo.script_pubkey.data, i.witness_utxo.value) for i in psbt.inputs]
    for index in range(len(txs.wallet_inputs)):
        tx.vin[index].witness = Witness([wallet.sign_key_path(tx, index, prevouts)])
    for index in txs.boarding_index.values():
        leaf = boarding[index]
        psbt.inputs[index].taproot_scripts = {leaf.control: leaf.script + bytes([LEAF_VERSION])}
        server_sig = arktx.sign_input(psbt, index, signer_secret)
        by_key = {**leaf.signatures, bip340.xonly_public_key(signer_secret): server_sig}
        keys = multisig_keys(leaf.script) or []
        # The first key's CHECKSIG(VERIFY) runs first and takes the stack top: the
        # witness lists signatures in reverse key order.
        stack = [by_key[k] for k in reversed(keys)]
        tx.vin[index].witness = Witness([*stack, leaf.script, leaf.control])
    return tx
