"""VTXO scripts and taproot trees match arkd's (its own test vectors).

The vectors: arkade-os/arkd v0.9.15 pkg/ark-lib/script/testdata/vtxoscript.json, copied
unchanged to data/arkd-v0.9.15/script_vtxoscript.json (test_vtxoscript_fixtures.py runs the
rest of each vector).
"""

from __future__ import annotations

import json
from pathlib import Path

import coincurve
import pytest
from embit.hashes import tagged_hash

from arkrelay_arkd.tapscript import (
    TapTree,
    bip68_sequence,
    collaborative_closure,
    csv_closure,
    decode_taptree_field,
    default_vtxo_tree,
    encode_taptree_field,
    leaf_hash,
    multisig_keys,
    parse_csv_closure,
    sequence_delay,
)

VECTORS = json.loads(
    (Path(__file__).parent / "data" / "arkd-v0.9.15" / "script_vtxoscript.json").read_text()
)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_tree_output_key_matches_arkd(vector: dict[str, object]) -> None:
    scripts = [bytes.fromhex(s) for s in vector["scripts"]]  # type: ignore[union-attr]
    assert TapTree.from_leaves(scripts).output_key.hex() == vector["taprootKey"]


def test_closures_encode_as_ark_lib_does() -> None:
    k1, k2 = bytes(range(32)), bytes(range(1, 33))
    # 512 s -> BIP68 seconds type: (1 << 22) | 1, pushed as 3 bytes.
    assert csv_closure(512, k1)[:6] == bytes.fromhex("03010040b275")
    assert parse_csv_closure(csv_closure(1024, k1, k2)) == (bip68_sequence(1024), [k1, k2])
    assert sequence_delay(bip68_sequence(1024)) == 1024
    assert bip68_sequence(144) == 144
    assert csv_closure(144, k1)[:4] == bytes.fromhex("029000b2")
    assert multisig_keys(collaborative_closure(k1, k2)) == [k1, k2]
    assert multisig_keys(csv_closure(512, k1)) is None
    with pytest.raises(ValueError, match="multiple of 512"):
        bip68_sequence(600)


def _bip341_output_key(control: bytes, script: bytes) -> bytes:
    """The output key a script-path spend proves (BIP341 verification), compressed: its
    parity is the control block's low bit only if the control block is right."""
    internal, path = control[1:33], control[33:]
    node = leaf_hash(script)
    for i in range(0, len(path), 32):
        sibling = path[i : i + 32]
        node = tagged_hash("TapBranch", min(node, sibling) + max(node, sibling))
    tweak = tagged_hash("TapTweak", internal + node)
    return coincurve.PublicKey(b"\x02" + internal).add(tweak).format()


def test_control_blocks_prove_the_output_key_with_its_parity() -> None:
    parities = set()
    for n in range(16):  # enough trees to meet both parities
        owner, signer = bytes([n + 1]) * 32, bytes.fromhex("22" * 32)
        tree = default_vtxo_tree(owner, signer, 512)
        assert tree.pk_script == b"\x51\x20" + tree.output_key
        for i, leaf in enumerate(tree.leaves):
            control = tree.control_block(i)
            assert control[0] & 0xFE == 0xC0 and len(control) == 33 + 32
            proven = _bip341_output_key(control, leaf)
            assert proven[1:] == tree.output_key
            assert proven[0] == 0x02 + (control[0] & 1)
            parities.add(control[0] & 1)
    assert parities == {0, 1}


def test_taptree_field_round_trips_with_ark_lib_depths() -> None:
    leaves = [b"\x51", b"\x52\x53", b"\x54" * 300]
    encoded = encode_taptree_field(leaves)
    assert encoded[0] == 1 and encoded[1] == 0xC0  # depth min(i+1, n-1), leaf version
    assert decode_taptree_field(encoded) == leaves
    with pytest.raises(ValueError):
        decode_taptree_field(encoded[:-1])
