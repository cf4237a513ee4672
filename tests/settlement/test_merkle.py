"""The settlement merkle tree against an independent reading of docs/settlement.md.

The reference (``reference.py``) is written from the specification with hashlib alone,
and the small trees are spelled out by hand here, so the module is checked against the
text, not against itself. The worked example in the document is parsed and recomputed too.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from arkrelay_core.settlement import merkle
from arkrelay_core.settlement.merkle import MerkleProof, ProofStep

from .reference import fold as reference_fold
from .reference import leaf, node, tagged, txids
from .reference import root as reference_root
from .reference import sides as reference_sides

DOC = Path(__file__).resolve().parents[2] / "docs" / "settlement.md"


# --------------------------------------------------------------------------- helpers


def steps(proof: MerkleProof) -> list[tuple[str, bytes]]:
    return [(s.side, bytes.fromhex(s.hash)) for s in proof.path]


# --------------------------------------------------------------------------- vectors


def test_tags_are_the_documented_strings() -> None:
    assert merkle.LEAF_TAG == b"ArkRelay/l2-leaf"
    assert merkle.NODE_TAG == b"ArkRelay/l2-node"


def test_leaf_hashes_the_txid_bytes_as_written_not_reversed() -> None:
    txid = "00" * 31 + "ff"
    assert merkle.leaf_hash(txid) == tagged("ArkRelay/l2-leaf", b"\x00" * 31 + b"\xff")
    assert merkle.leaf_hash(txid) != tagged("ArkRelay/l2-leaf", b"\xff" + b"\x00" * 31)


def test_one_leaf_the_root_is_the_leaf_hash() -> None:
    [a] = txids(1)
    assert merkle.merkle_root([a]) == leaf(a).hex()


def test_two_leaves() -> None:
    a, b = sorted(txids(2))
    assert merkle.merkle_root([b, a]) == node(leaf(a), leaf(b)).hex()


def test_three_leaves_the_odd_one_moves_up_unchanged() -> None:
    a, b, c = sorted(txids(3))
    expected = node(node(leaf(a), leaf(b)), leaf(c))
    assert merkle.merkle_root([c, a, b]) == expected.hex()
    # Not Bitcoin's rule, which would pair c with itself.
    assert expected != node(node(leaf(a), leaf(b)), node(leaf(c), leaf(c)))


def test_five_leaves() -> None:
    a, b, c, d, e = sorted(txids(5))
    expected = node(node(node(leaf(a), leaf(b)), node(leaf(c), leaf(d))), leaf(e))
    assert merkle.merkle_root([e, d, c, b, a]) == expected.hex()


@pytest.mark.parametrize("count", range(1, 40))
def test_root_matches_the_reference_for_every_size(count: int) -> None:
    ids = txids(count, seed=f"size{count}")
    assert merkle.merkle_root(ids) == reference_root(ids).hex()


def test_order_and_duplicates_do_not_change_the_root() -> None:
    ids = txids(11)
    root = merkle.merkle_root(ids)
    shuffled = ids + ids[:4]
    random.Random(7).shuffle(shuffled)
    assert merkle.merkle_root(shuffled) == root
    assert merkle.ordered_leaves(shuffled) == sorted(ids)
    target = ids[5]
    assert merkle.build_proof(shuffled, target) == merkle.build_proof(ids, target)


def test_a_different_set_has_a_different_root() -> None:
    ids = sorted(txids(4))
    roots = {merkle.merkle_root(ids[:n]) for n in range(1, 5)}
    roots.add(merkle.merkle_root(ids[1:]))
    assert len(roots) == 5


# --------------------------------------------------------------------------- proofs


@pytest.mark.parametrize("count", range(1, 18))
def test_every_leaf_proof_folds_to_the_root(count: int) -> None:
    ids = txids(count, seed=f"proof{count}")
    root = reference_root(ids)
    for index, txid in enumerate(sorted(ids)):
        proof = merkle.build_proof(ids, txid)
        assert (proof.ark_txid, proof.index, proof.count) == (txid, index, count)
        assert proof.merkle_root == root.hex()
        assert [s.side for s in proof.path] == reference_sides(index, count)
        assert reference_fold(txid, steps(proof)) == root
        assert merkle.root_from_proof(txid, proof.path) == root.hex()


def test_a_single_leaf_has_an_empty_path() -> None:
    [a] = txids(1)
    proof = merkle.build_proof([a], a)
    assert proof.path == () and proof.index == 0 and proof.count == 1
    assert merkle.root_from_proof(a, ()) == proof.merkle_root


def _flip(step: ProofStep) -> ProofStep:
    return ProofStep("right" if step.side == "left" else "left", step.hash)


def tamperings(ids: list[str], proof: MerkleProof) -> dict[str, tuple[str, list[ProofStep]]]:
    path = list(proof.path)
    other = next(t for t in ids if t != proof.ark_txid)
    wrong = bytearray.fromhex(path[0].hash)
    wrong[0] ^= 1
    return {
        "flipped side": (proof.ark_txid, [_flip(path[0]), *path[1:]]),
        "flipped last side": (proof.ark_txid, [*path[:-1], _flip(path[-1])]),
        "wrong hash": (proof.ark_txid, [ProofStep(path[0].side, wrong.hex()), *path[1:]]),
        "extra step": (proof.ark_txid, [*path, ProofStep("right", path[0].hash)]),
        "missing step": (proof.ark_txid, path[:-1]),
        "missing first step": (proof.ark_txid, path[1:]),
        "other txid": (other, path),
    }


@pytest.mark.parametrize("count", range(2, 18))
def test_tampered_proofs_do_not_fold_to_the_root(count: int) -> None:
    ids = txids(count, seed=f"tamper{count}")
    for txid in ids:
        proof = merkle.build_proof(ids, txid)
        for what, (claimed, path) in tamperings(ids, proof).items():
            folded = merkle.root_from_proof(claimed, path)
            assert folded != proof.merkle_root, (count, txid, what)
            as_bytes = [(s.side, bytes.fromhex(s.hash)) for s in path]
            assert folded == reference_fold(claimed, as_bytes).hex()


def test_a_proof_step_must_be_a_32_byte_hash() -> None:
    ids = txids(3)
    proof = merkle.build_proof(ids, ids[0])
    short = ProofStep(proof.path[0].side, proof.path[0].hash[:62])
    with pytest.raises(ValueError):
        merkle.root_from_proof(ids[0], [short, *proof.path[1:]])


def test_a_txid_not_in_the_tree_has_no_proof() -> None:
    ids = txids(4)
    with pytest.raises(ValueError, match="not among"):
        merkle.build_proof(ids, txids(1, seed="elsewhere")[0])


def test_a_tree_needs_a_leaf() -> None:
    with pytest.raises(ValueError):
        merkle.merkle_root([])


GOOD = txids(1)[0]


@pytest.mark.parametrize(
    "bad",
    [
        GOOD.upper(),
        GOOD[:63],
        GOOD + "0",
        GOOD[:62] + "zz",
        "0x" + GOOD[:62],
        "",
        # Spelled any other way, a txid would be a second leaf with the same bytes.
        pytest.param(GOOD[:2] + " " + GOOD[2:], id="inner-space"),
        pytest.param(GOOD + "\n", id="trailing-newline"),
        pytest.param(" " + GOOD, id="leading-space"),
    ],
)
def test_bad_txids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        merkle.leaf_hash(bad)
    with pytest.raises(ValueError):
        merkle.merkle_root([GOOD, bad])
    with pytest.raises(ValueError):
        merkle.build_proof([GOOD], bad)


# --------------------------------------------------------------------------- OP_RETURN payload


def test_payload_round_trip() -> None:
    root = reference_root(txids(6))
    payload = merkle.commitment_payload(root.hex())
    assert payload == b"ARKR" + b"\x01" + root
    assert len(payload) == 37
    assert merkle.parse_commitment_payload(payload) == root.hex()


@pytest.mark.parametrize(
    "payload",
    [
        b"ARKX\x01" + b"\x00" * 32,
        b"ARKR\x02" + b"\x00" * 32,
        b"ARKR\x01" + b"\x00" * 31,
        b"ARKR\x01" + b"\x00" * 33,
        b"",
    ],
)
def test_other_payloads_are_not_ours(payload: bytes) -> None:
    with pytest.raises(ValueError):
        merkle.parse_commitment_payload(payload)


def test_a_payload_needs_a_32_byte_root() -> None:
    with pytest.raises(ValueError):
        merkle.commitment_payload("ab" * 31)


# --------------------------------------------------------------------------- the document


def worked_example() -> dict[str, str]:
    text = DOC.read_text()
    marker = text.index("<!-- worked-example:")
    block = re.search(r"```text\n(.*?)```", text[marker:], re.S)
    assert block is not None, "no worked example block in docs/settlement.md"
    values = {}
    for line in block.group(1).splitlines():
        match = re.fullmatch(r"(\S+(?: \S+)*?)\s{2,}([0-9a-f]+)", line)
        assert match, f"unreadable worked example line: {line!r}"
        values[match.group(1)] = match.group(2)
    return values


def worked_proof() -> dict:
    text = DOC.read_text()
    marker = text.index("<!-- worked-example-proof -->")
    block = re.search(r"```json\n(.*?)```", text[marker:], re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_the_documented_worked_example_is_what_the_code_computes() -> None:
    doc = worked_example()
    received = [doc["received 1"], doc["received 2"], doc["received 3"]]
    ordered = sorted(received)
    assert [doc[f"leaf {i} txid"] for i in range(3)] == ordered == merkle.ordered_leaves(received)
    assert doc["leaf tag"] == hashlib.sha256(b"ArkRelay/l2-leaf").hexdigest()
    assert doc["node tag"] == hashlib.sha256(b"ArkRelay/l2-node").hexdigest()
    hashes = [leaf(t) for t in ordered]
    assert [doc[f"leaf {i} hash"] for i in range(3)] == [h.hex() for h in hashes]
    assert [merkle.leaf_hash(t).hex() for t in ordered] == [h.hex() for h in hashes]
    assert doc["node 0-1"] == node(hashes[0], hashes[1]).hex()
    root = node(node(hashes[0], hashes[1]), hashes[2])
    assert doc["root"] == root.hex() == merkle.merkle_root(received)
    assert doc["payload"] == merkle.commitment_payload(root.hex()).hex()
    assert doc["script"] == "6a25" + doc["payload"]


def test_the_documented_proof_folds_and_is_what_the_api_builds() -> None:
    doc = worked_example()
    proof = worked_proof()
    received = [doc["received 1"], doc["received 2"], doc["received 3"]]
    built = merkle.build_proof(received, proof["ark_txid"])
    assert proof["index"] == built.index and proof["count"] == built.count
    assert proof["path"] == [{"side": s.side, "hash": s.hash} for s in built.path]
    assert proof["merkle_root"] == built.merkle_root == doc["root"]
    path = [(s["side"], bytes.fromhex(s["hash"])) for s in proof["path"]]
    assert reference_fold(proof["ark_txid"], path).hex() == doc["root"]
    assert [s["side"] for s in proof["path"]] == reference_sides(proof["index"], proof["count"])
