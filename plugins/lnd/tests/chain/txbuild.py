"""Transactions the tests sign themselves, with embit alone (its own taproot tweak and
sighashes), so the chain's checks are judged by code that is not the chain's."""

from __future__ import annotations

from dataclasses import dataclass

from embit import ec, hashes
from embit.script import Script, p2tr, p2wpkh, witness_p2wpkh
from embit.transaction import Transaction, TransactionInput, TransactionOutput
from embit.util import secp256k1

from arkrelay_lnd.chainsim.sighash import taproot_sighash

__all__ = ["Coin", "Key", "Leaf", "build", "csv_leaf", "sign_keypath"]


@dataclass(frozen=True)
class Coin:
    txid: str
    vout: int
    value: int
    script: bytes


class Key:
    def __init__(self, seed: int) -> None:
        self.priv = ec.PrivateKey(seed.to_bytes(32, "big"))
        self.pub = self.priv.get_public_key()

    @property
    def xonly(self) -> bytes:
        return self.pub.xonly()

    @property
    def p2tr(self) -> bytes:
        """BIP 86 key-path-only output."""
        return p2tr(self.pub).data

    @property
    def p2wpkh(self) -> bytes:
        return p2wpkh(self.pub).data


@dataclass(frozen=True)
class Leaf:
    """A one-leaf taproot output: ``script`` under ``internal``'s key."""

    internal: Key
    script: bytes

    @property
    def leaf_hash(self) -> bytes:
        return hashes.tagged_hash("TapLeaf", b"\xc0" + Script(self.script).serialize())

    def _tweaked(self) -> bytes:
        tweak = hashes.tagged_hash("TapTweak", self.internal.xonly + self.leaf_hash)
        point = secp256k1.ec_pubkey_parse(b"\x02" + self.internal.xonly)
        return secp256k1.ec_pubkey_serialize(secp256k1.ec_pubkey_add(point, tweak))

    @property
    def output(self) -> bytes:
        return b"\x51\x20" + self._tweaked()[1:]

    @property
    def control(self) -> bytes:
        parity = self._tweaked()[0] == 0x03
        return bytes([0xC0 | parity]) + self.internal.xonly


def csv_leaf(blocks: int, key: Key, internal: Key) -> Leaf:
    """Ark's exit closure: ``<blocks> OP_CHECKSEQUENCEVERIFY OP_DROP <key> OP_CHECKSIG``."""
    number = Script()
    number.push(blocks.to_bytes((blocks.bit_length() + 8) // 8, "little"))
    return Leaf(internal, number.data + b"\xb2\x75\x20" + key.xonly + b"\xac")


def build(
    coins: list[Coin],
    outputs: list[tuple[int, bytes]],
    *,
    version: int = 2,
    sequence: int = 0xFFFFFFFD,
    locktime: int = 0,
) -> Transaction:
    return Transaction(
        version=version,
        locktime=locktime,
        vin=[TransactionInput(bytes.fromhex(c.txid), c.vout, sequence=sequence) for c in coins],
        vout=[TransactionOutput(v, Script(s)) for v, s in outputs],
    )


def sign_keypath(tx: Transaction, coins: list[Coin], index: int, key: Key, hash_type: int = 0):
    """A BIP 86 key-path signature (64 bytes for SIGHASH_DEFAULT, else 65). DEFAULT digests
    are embit's; other types use the chain's ``taproot_sighash``, which BIP 341's vectors
    pin (embit 0.8's is wrong for SINGLE and ANYONECANPAY)."""
    if hash_type:
        spent = [TransactionOutput(c.value, Script(c.script)) for c in coins]
        digest = taproot_sighash(tx, index, spent, hash_type)
    else:
        scripts = [Script(c.script) for c in coins]
        digest = tx.sighash_taproot(index, scripts, [c.value for c in coins])
    sig = key.priv.taproot_tweak(b"").schnorr_sign(digest).serialize()
    tx.vin[index].witness.items = [sig + (bytes([hash_type]) if hash_type else b"")]


def sign_leaf(tx: Transaction, coins: list[Coin], index: int, key: Key, leaf: Leaf) -> None:
    scripts = [Script(c.script) for c in coins]
    digest = tx.sighash_taproot(
        index, scripts, [c.value for c in coins], ext_flag=1, script=Script(leaf.script)
    )
    sig = key.priv.schnorr_sign(digest).serialize()
    tx.vin[index].witness.items = [sig, leaf.script, leaf.control]


def sign_p2wpkh(tx: Transaction, coins: list[Coin], index: int, key: Key) -> None:
    code = Script(b"\x76\xa9\x14" + hashes.hash160(key.pub.sec()) + b"\x88\xac")
    digest = tx.sighash_segwit(index, code, coins[index].value)
    tx.vin[index].witness = witness_p2wpkh(key.priv.sign(digest), key.pub)
