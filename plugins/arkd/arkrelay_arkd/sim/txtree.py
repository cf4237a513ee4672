"""Batch trees: the VTXO tree and the connector tree, shaped as arkd v0.9.15 builds them.

ark-lib ``tree/builder.go``: one leaf per intent (its offchain outputs), grouped upward in
fixed-size groups (radix 2 for VTXOs, 4 for connectors; a remainder that does not fill a
group is carried to the next level). Every tx is version 3 with one input (sequence final,
SIGHASH_DEFAULT), its outputs, then the P2A anchor (0 sats). The output a tx spends pays
the taproot key of its cosigners: the MuSig2 aggregate of the sorted keys, tweaked with the
sweep tapscript root for the VTXO tree; a lone cosigner (connectors) is its own key.

Each tx's PSBT input names its cosigners (ark field ``cosigner``, 4-byte big-endian index)
and, in the VTXO tree, the tree expiry (ark field ``expiry``, a minimal little-endian
BIP68 sequence), as ark-lib's ``txutils/psbt_fields.go`` writes them; @arkade-os/sdk reads
the cosigners back to aggregate keys and nonces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import coincurve
from embit.hashes import tagged_hash
from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from .. import musig2
from ..tapscript import ANCHOR_SCRIPT, bip68_sequence, csv_closure, leaf_hash, p2tr_script

__all__ = [
    "ARK_FIELD",
    "CONNECTOR_RADIX",
    "COSIGNER_KEY",
    "EXPIRY_KEY",
    "VTXO_RADIX",
    "Leaf",
    "TreeTx",
    "aggregate_output_key",
    "batch_output",
    "build_tree",
    "cosigners_of",
    "sweep_root",
    "tree_tweak",
]

VTXO_RADIX = 2
CONNECTOR_RADIX = 4
ANCHOR_VALUE = 0
TREE_TX_VERSION = 3
SEQUENCE_FINAL = 0xFFFFFFFF
ARK_FIELD = b"\xde"
COSIGNER_KEY = ARK_FIELD + b"cosigner"
EXPIRY_KEY = ARK_FIELD + b"expiry"


def sweep_root(forfeit_xonly: bytes, expiry: int) -> bytes:
    """The tap root the tree's keys are tweaked with: one leaf, the server's sweep closure
    (its forfeit key after the batch expiry CSV)."""
    return leaf_hash(csv_closure(expiry, forfeit_xonly))


def tree_tweak(agg_xonly: bytes, root: bytes) -> bytes:
    return tagged_hash("TapTweak", agg_xonly + root)


def aggregate_output_key(cosigners: Sequence[bytes], root: bytes | None) -> bytes:
    """x-only taproot key a tree output pays for these (33-byte) cosigner keys."""
    if len(cosigners) == 1:
        # ark-lib falls back to plain P2TR for one key (no key-aggregation coefficient).
        internal = cosigners[0][1:]
        if not root:
            return internal
        point = coincurve.PublicKey(b"\x02" + internal)
        return point.add(tree_tweak(internal, root)).format()[1:]
    ctx = musig2.key_agg(musig2.key_sort(cosigners))
    if root:
        ctx = ctx.apply_tweak(tree_tweak(ctx.xonly(), root), True)
    return ctx.xonly()


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One intent's share of a tree: its outputs (script, sats) and cosigners (33 bytes)."""

    outputs: tuple[tuple[bytes, int], ...]
    cosigners: tuple[bytes, ...]


@dataclasses.dataclass
class _Node:
    cosigners: list[bytes]
    input_script: bytes
    outputs: list[tuple[bytes, int]]  # a leaf's own outputs; empty for a branch
    children: list[_Node]

    @property
    def amount(self) -> int:
        if not self.children:
            return sum(a for _, a in self.outputs)
        return sum(c.amount + ANCHOR_VALUE for c in self.children)

    def tx_outputs(self) -> list[tuple[bytes, int]]:
        own = (
            self.outputs
            if not self.children
            else [(c.input_script, c.amount) for c in self.children]
        )
        return [*own, (ANCHOR_SCRIPT, ANCHOR_VALUE)]


@dataclasses.dataclass
class TreeTx:
    psbt: PSBT
    children: dict[int, TreeTx]

    @property
    def txid(self) -> str:
        return self.psbt.tx.txid().hex()

    def walk(self) -> Iterator[TreeTx]:
        """Every tx, parents before children."""
        yield self
        for index in sorted(self.children):
            yield from self.children[index].walk()

    def leaves(self) -> list[TreeTx]:
        return [t for t in self.walk() if not t.children]

    def parent_output(self, txid: str) -> tuple[bytes, int] | None:
        """(script, amount) of the output the tx ``txid`` spends, if its parent is here."""
        for node in self.walk():
            for index, child in node.children.items():
                if child.txid == txid:
                    out = node.psbt.tx.vout[index]
                    return out.script_pubkey.data, out.value
        return None


def _unique(keys: Sequence[bytes]) -> list[bytes]:
    seen: set[bytes] = set()
    out = []
    for key in keys:
        if key[1:] not in seen:
            seen.add(key[1:])
            out.append(key)
    return out


def _node(cosigners: Sequence[bytes], root: bytes | None, outputs, children) -> _Node:
    keys = _unique(cosigners)
    if not keys:
        raise ValueError("a tree node needs at least one cosigner")
    return _Node(keys, p2tr_script(aggregate_output_key(keys, root)), list(outputs), children)


def _upper_level(nodes: list[_Node], root: bytes | None, radix: int) -> list[_Node]:
    if len(nodes) <= 1:
        return nodes
    if len(nodes) < radix:
        return _upper_level(nodes, root, len(nodes))
    remainder = len(nodes) % radix
    if remainder:
        return [*_upper_level(nodes[:-remainder], root, radix), *nodes[-remainder:]]
    groups = []
    for i in range(0, len(nodes), radix):
        children = nodes[i : i + radix]
        keys = [k for child in children for k in child.cosigners]
        groups.append(_node(keys, root, (), children))
    return groups


def _root_node(leaves: Sequence[Leaf], root: bytes | None, radix: int) -> _Node:
    if not leaves:
        raise ValueError("no receivers provided")
    nodes = [_node(leaf.cosigners, root, leaf.outputs, []) for leaf in leaves]
    while len(nodes) > 1:
        nodes = _upper_level(nodes, root, radix)
    return nodes[0]


def batch_output(leaves: Sequence[Leaf], root: bytes | None, radix: int) -> tuple[bytes, int]:
    """(script, amount) of the commitment-tx output the tree hangs from."""
    top = _root_node(leaves, root, radix)
    return top.input_script, top.amount + ANCHOR_VALUE


def build_tree(
    leaves: Sequence[Leaf],
    root: bytes | None,
    radix: int,
    outpoint: tuple[str, int],
    expiry: int | None,
) -> TreeTx:
    """The tree of txs spending ``outpoint`` (the batch or connector output)."""
    return _materialise(_root_node(leaves, root, radix), outpoint, expiry)


def _materialise(node: _Node, outpoint: tuple[str, int], expiry: int | None) -> TreeTx:
    tx = Transaction(
        version=TREE_TX_VERSION,
        vin=[TransactionInput(bytes.fromhex(outpoint[0]), outpoint[1], sequence=SEQUENCE_FINAL)],
        vout=[TransactionOutput(amount, Script(script)) for script, amount in node.tx_outputs()],
        locktime=0,
    )
    psbt = PSBT(tx, unknown={})
    inp = psbt.inputs[0]
    inp.sighash_type = 0
    fields: dict[bytes, bytes] = {}
    for index, key in enumerate(node.cosigners):
        fields[COSIGNER_KEY + index.to_bytes(4, "big")] = key
    if expiry is not None:
        fields[EXPIRY_KEY] = _minimal_le(bip68_sequence(expiry))
    inp.unknown = fields
    txid = tx.txid().hex()
    children = {
        index: _materialise(child, (txid, index), expiry)
        for index, child in enumerate(node.children)
    }
    return TreeTx(psbt, children)


def cosigners_of(psbt: PSBT) -> list[bytes]:
    """The cosigner keys a tree tx names, in index order."""
    found = []
    for key, value in psbt.inputs[0].unknown.items():
        if key.startswith(COSIGNER_KEY) and len(key) == len(COSIGNER_KEY) + 4:
            found.append((int.from_bytes(key[-4:], "big"), value))
    return [value for _, value in sorted(found)]


def _minimal_le(value: int) -> bytes:
    raw = value.to_bytes(4, "little")
    size = 4
    while size > 1 and raw[size - 1] == 0:
        size -= 1
    if raw[size - 1] & 0x80:
        size += 1
    return raw[:size] if size <= 4 else raw + b"\x00"
