"""What the offchain flow reuses instead of recomputing: tap trees (cached by their
leaves), a PSBT's facts (remembered under its string), and the server-only signature
check of arkd's answer. Reuse must give exactly what computing afresh gives."""

from __future__ import annotations

from arkrelay_arkd import arktx, psbtfacts
from arkrelay_arkd.tapscript import TapTree, csv_closure, default_vtxo_tree
from arkrelay_core.nostr import bip340

OWNER = bip340.generate_secret_key()
SERVER = bip340.generate_secret_key()
OWNER_X = bip340.xonly_public_key(OWNER)
SERVER_X = bip340.xonly_public_key(SERVER)


def _spend(tree: TapTree, vout: int, amount: int) -> arktx.VtxoSpend:
    return arktx.VtxoSpend("11" * 32, vout, amount, tree, tree.leaves[1])


def test_a_cached_tree_is_the_tree_of_its_leaves() -> None:
    tree = default_vtxo_tree(OWNER_X, SERVER_X, 512)
    assert default_vtxo_tree(OWNER_X, SERVER_X, 512) is tree
    assert TapTree.from_leaves([bytearray(leaf) for leaf in tree.leaves]) == tree
    other = default_vtxo_tree(OWNER_X, SERVER_X, 1024)
    assert other.output_key != tree.output_key


def test_facts_remembered_or_decoded_agree_with_the_psbt() -> None:
    tree = default_vtxo_tree(OWNER_X, SERVER_X, 512)
    spends = [_spend(tree, 0, 3_000), _spend(tree, 1, 2_000)]
    txs = arktx.build_offchain_txs(
        spends,
        [(tree.pk_script, 4_000), (arktx.sub_dust_script(tree.output_key), 1_000)],
        csv_closure(512, SERVER_X),
    )
    b64 = arktx.encode_psbt(txs.ark_tx)
    decoded = psbtfacts.facts(b64)
    assert decoded.txid == arktx.txid(txs.ark_tx)
    assert decoded.spends == tuple(arktx.input_outpoint(txs.ark_tx, i) for i in range(2))
    assert decoded.vtxo_outputs == tuple(o.index for o in arktx.vtxo_outputs(txs.ark_tx))
    assert psbtfacts.remember(b64, arktx.decode_psbt(b64)) == decoded
    checkpoint = arktx.encode_psbt(txs.checkpoints[1])
    assert psbtfacts.facts(checkpoint).spends == (f"{'11' * 32}:1",)


def test_verifying_only_some_keys_leaves_the_others_unchecked() -> None:
    tree = default_vtxo_tree(OWNER_X, SERVER_X, 512)
    txs = arktx.build_offchain_txs(
        [_spend(tree, 0, 3_000)], [(tree.pk_script, 3_000)], csv_closure(512, SERVER_X)
    )
    ark = txs.ark_tx
    arktx.sign_input(ark, 0, SERVER)
    arktx.add_signature(ark, 0, OWNER_X, b"\x01" * 64)  # not a valid signature
    assert arktx.verify_input_signatures(ark, 0) == {SERVER_X: True, OWNER_X: False}
    assert arktx.verify_input_signatures(ark, 0, only={SERVER_X}) == {SERVER_X: True}
    assert arktx.verify_input_signatures(ark, 0, only={OWNER_X}) == {OWNER_X: False}
