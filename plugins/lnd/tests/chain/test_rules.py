"""The chain's rules in process (the ledger without HTTP): the tapscripts Ark spends,
segwit v0 spends, TRUC topology, the opcodes the interpreter refuses."""

from __future__ import annotations

import hashlib

import pytest
from embit.script import Script, p2wsh
from embit.transaction import Transaction

from arkrelay_lnd.chainsim import P2A_SCRIPT, Ledger, Refusal

from .txbuild import Coin, Key, Leaf, build, sign_keypath, sign_p2wpkh

A, B, C = Key(11), Key(12), Key(13)


def push(data: bytes) -> bytes:
    script = Script()
    script.push(data)
    return script.data


def number(n: int) -> bytes:
    return push(n.to_bytes((n.bit_length() + 8) // 8, "little"))


def fund(ledger: Ledger, script: bytes, amount: int = 50_000) -> Coin:
    txid, vout = ledger.faucet(script, amount)
    return Coin(txid, vout, amount, script)


def leaf_sigs(tx: Transaction, coins: list[Coin], leaf: Leaf, *keys: Key) -> list[bytes]:
    digest = tx.sighash_taproot(
        0, [Script(c.script) for c in coins], [c.value for c in coins], ext_flag=1,
        script=Script(leaf.script),
    )  # fmt: skip
    return [k.priv.schnorr_sign(digest).serialize() for k in keys]


def refused(ledger: Ledger, tx: Transaction) -> str:
    with pytest.raises(Refusal) as caught:
        ledger.submit(tx.serialize())
    return caught.value.reason


def test_checksigadd_multisig_needs_every_signature() -> None:
    ledger = Ledger()
    leaf = Leaf(C, push(A.xonly) + b"\xac" + push(B.xonly) + b"\xba" + number(2) + b"\x9c")
    coin = fund(ledger, leaf.output)
    tx = build([coin], [(49_000, C.p2tr)])
    sig_a, sig_b = leaf_sigs(tx, [coin], leaf, A, B)
    tx.vin[0].witness.items = [b"", sig_a, leaf.script, leaf.control]
    assert refused(ledger, tx) == (
        "mandatory-script-verify-flag-failed (Script evaluated without error but finished "
        "with a false/empty top stack element)"
    )
    tx.vin[0].witness.items = [sig_a, sig_b, leaf.script, leaf.control]  # swapped
    assert refused(ledger, tx) == "mandatory-script-verify-flag-failed (Invalid Schnorr signature)"
    tx.vin[0].witness.items = [sig_b, sig_a, leaf.script, leaf.control]
    assert ledger.submit(tx.serialize()) == tx.txid().hex()


def test_checksigverify_chain_and_hash_lock() -> None:
    ledger = Ledger()
    secret = b"preimage"
    leaf = Leaf(
        C,
        b"\xa8" + push(hashlib.sha256(secret).digest()) + b"\x88"
        + push(A.xonly) + b"\xad" + push(B.xonly) + b"\xac",
    )  # fmt: skip
    coin = fund(ledger, leaf.output)
    tx = build([coin], [(49_000, C.p2tr)])
    sig_a, sig_b = leaf_sigs(tx, [coin], leaf, A, B)
    tx.vin[0].witness.items = [sig_b, sig_a, b"wrong", leaf.script, leaf.control]
    assert refused(ledger, tx) == (
        "mandatory-script-verify-flag-failed (Script failed an OP_EQUALVERIFY operation)"
    )
    tx.vin[0].witness.items = [sig_b, b"", secret, leaf.script, leaf.control]
    assert refused(ledger, tx) == (
        "mandatory-script-verify-flag-failed (Script failed an OP_CHECKSIGVERIFY operation)"
    )
    tx.vin[0].witness.items = [sig_b, sig_a, secret, leaf.script, leaf.control]
    ledger.submit(tx.serialize())


def test_cltv_leaf_needs_the_locktime_and_the_height() -> None:
    ledger = Ledger()
    unlock = ledger.height + 5
    leaf = Leaf(C, number(unlock) + b"\xb1\x75" + push(A.xonly) + b"\xac")
    coin = fund(ledger, leaf.output)

    def spend(locktime: int) -> Transaction:
        tx = build([coin], [(49_000, C.p2tr)], locktime=locktime)
        tx.vin[0].witness.items = [*leaf_sigs(tx, [coin], leaf, A), leaf.script, leaf.control]
        return tx

    ledger.mine(unlock - 1 - ledger.height)  # the next block is the unlock height
    assert refused(ledger, spend(unlock - 1)) == (
        "mandatory-script-verify-flag-failed (Locktime requirement not satisfied)"
    )
    assert refused(ledger, spend(unlock)) == "non-final"
    ledger.mine(1)
    ledger.submit(spend(unlock).serialize())


def test_segwit_v0_spends() -> None:
    ledger = Ledger()
    coin = fund(ledger, A.p2wpkh)
    tx = build([coin], [(49_000, B.p2tr)])
    sign_p2wpkh(tx, [coin], 0, B)
    assert refused(ledger, tx) == (
        "mandatory-script-verify-flag-failed (Witness program hash mismatch)"
    )
    sign_p2wpkh(tx, [coin], 0, A)
    ledger.submit(tx.serialize())

    script = push(A.pub.sec()) + b"\xac"
    coin = fund(ledger, p2wsh(Script(script)).data)
    tx = build([coin], [(49_000, B.p2tr)])
    code = Script(script)
    digest = tx.sighash_segwit(0, code, coin.value)
    tx.vin[0].witness.items = [B.priv.sign(digest).serialize() + b"\x01", script]
    assert "false/empty top stack element" in refused(ledger, tx)
    tx.vin[0].witness.items = [A.priv.sign(digest).serialize() + b"\x01", script]
    ledger.submit(tx.serialize())


def test_unmodelled_opcodes_are_refused_not_assumed() -> None:
    ledger = Ledger()
    leaf = Leaf(C, b"\x51\x63" + push(A.xonly) + b"\xac\x68")  # OP_1 OP_IF ... OP_ENDIF
    coin = fund(ledger, leaf.output)
    tx = build([coin], [(49_000, C.p2tr)])
    tx.vin[0].witness.items = [*leaf_sigs(tx, [coin], leaf, A), leaf.script, leaf.control]
    assert refused(ledger, tx) == (
        "non-mandatory-script-verify-flag (OP_IF is not modelled by the simulator)"
    )


def test_truc_topology() -> None:
    ledger = Ledger()
    coin = fund(ledger, A.p2tr, 100_000)
    parent = build([coin], [(50_000, A.p2tr), (49_000, B.p2tr)], version=3)
    sign_keypath(parent, [coin], 0, A)
    ledger.submit(parent.serialize())
    mine = Coin(parent.txid().hex(), 0, 50_000, A.p2tr)
    child = build([mine], [(49_000, A.p2tr)], version=2)
    sign_keypath(child, [mine], 0, A)
    assert refused(ledger, child).startswith(
        f"TRUC-violation, non-version=3 tx {child.txid().hex()}"
    )
    child = build([mine], [(49_000, A.p2tr)], version=3)
    sign_keypath(child, [mine], 0, A)
    ledger.submit(child.serialize())
    theirs = Coin(parent.txid().hex(), 1, 49_000, B.p2tr)
    sibling = build([theirs], [(48_000, B.p2tr)], version=3)
    sign_keypath(sibling, [theirs], 0, B)
    assert "would exceed descendant count limit" in refused(ledger, sibling)
    grandchild_coin = Coin(child.txid().hex(), 0, 49_000, A.p2tr)
    grandchild = build([grandchild_coin], [(48_000, A.p2tr)], version=3)
    sign_keypath(grandchild, [grandchild_coin], 0, A)
    assert "would have too many ancestors" in refused(ledger, grandchild)
    ledger.mine(1)
    assert not ledger.mempool
    ledger.submit(grandchild.serialize())


def test_anchor_spend_needs_an_empty_witness_and_standard_outputs() -> None:
    ledger = Ledger()
    coin = fund(ledger, P2A_SCRIPT, 1_000)
    fuel = fund(ledger, A.p2tr)
    tx = build([coin, fuel], [(50_000, A.p2tr)])
    sign_keypath(tx, [coin, fuel], 1, A)
    tx.vin[0].witness.items = [b"\x01"]
    assert refused(ledger, tx) == "bad-witness-nonstandard"
    tx.vin[0].witness.items = []
    ledger.submit(tx.serialize())
    other = fund(ledger, A.p2tr)
    odd = build([other], [(49_000, b"\x00\x05" + bytes(5))])  # v0 program of 5 bytes
    sign_keypath(odd, [other], 0, A)
    assert refused(ledger, odd) == "scriptpubkey"


def test_time_based_csv_matures_with_the_median_time_of_mined_blocks() -> None:
    """Ark's exit delays are in seconds (BIP 68 type flag, 512 s units): blocks are stamped
    600 s apart, so they mature by mining, judged on median time past."""
    ledger = Ledger(clock=lambda: 1_700_000_000)
    lock = (1 << 22) | 4  # 4 x 512 s
    leaf = Leaf(C, number(lock) + b"\xb2\x75" + push(A.xonly) + b"\xac")
    coin = fund(ledger, leaf.output)

    def spend() -> Transaction:
        tx = build([coin], [(49_000, C.p2tr)], sequence=lock)
        tx.vin[0].witness.items = [*leaf_sigs(tx, [coin], leaf, A), leaf.script, leaf.control]
        return tx

    assert refused(ledger, spend()) == "non-BIP68-final"
    mined = 0
    while True:
        ledger.mine(1)
        mined += 1
        try:
            ledger.submit(spend().serialize())
            break
        except Refusal as exc:
            assert exc.reason == "non-BIP68-final"
    # 2048 s past the median time before the coin's block: the median of eleven blocks
    # lags five behind the tip, so 4 blocks of 600 s are not enough and 9 are.
    assert 4 < mined <= 9
