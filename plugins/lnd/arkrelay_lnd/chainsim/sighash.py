"""BIP 341 signature messages (taproot key path and tapscript), every hash type.

Written here rather than taken from embit: embit 0.8's ``Transaction.sighash_taproot``
hashes an ANYONECANPAY input as its whole serialization (scriptSig and all, where BIP 341
commits to the outpoint alone) and puts SIGHASH_SINGLE's output in unhashed, so its
digests for those types differ from BIP 341's; BIP 341's own test vectors
(tests/chain/test_bip341_vectors.py) pin this implementation for all of them.
"""

from __future__ import annotations

import hashlib

from embit import compact, hashes
from embit.script import Script
from embit.transaction import Transaction, TransactionOutput

__all__ = ["taproot_sighash"]

_NONE, _SINGLE, _ANYONECANPAY = 0x02, 0x03, 0x80


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def taproot_sighash(
    tx: Transaction,
    index: int,
    spent: list[TransactionOutput],
    hash_type: int,
    *,
    leaf: bytes | None = None,
    annex: bytes | None = None,
) -> bytes:
    """The digest a BIP 340 signature of input ``index`` signs: key path, or the
    tapscript ``leaf`` (leaf version 0xc0, no OP_CODESEPARATOR executed). ``spent`` holds
    the outputs every input spends; ``hash_type`` is 0 (DEFAULT) or a valid type whose
    SINGLE has a matching output (the caller checks)."""
    outputs_kind = hash_type & 0x03
    anyone = bool(hash_type & _ANYONECANPAY)
    msg = bytearray([0x00, hash_type])  # epoch 0, then the hash type
    msg += tx.version.to_bytes(4, "little") + tx.locktime.to_bytes(4, "little")
    if not anyone:
        msg += _sha(b"".join(i.txid[::-1] + i.vout.to_bytes(4, "little") for i in tx.vin))
        msg += _sha(b"".join(o.value.to_bytes(8, "little") for o in spent))
        msg += _sha(b"".join(o.script_pubkey.serialize() for o in spent))
        msg += _sha(b"".join(i.sequence.to_bytes(4, "little") for i in tx.vin))
    if outputs_kind not in (_NONE, _SINGLE):
        msg += _sha(b"".join(o.serialize() for o in tx.vout))
    msg.append((2 if leaf is not None else 0) + (1 if annex is not None else 0))
    if anyone:
        inp = tx.vin[index]
        msg += inp.txid[::-1] + inp.vout.to_bytes(4, "little")
        msg += spent[index].value.to_bytes(8, "little") + spent[index].script_pubkey.serialize()
        msg += inp.sequence.to_bytes(4, "little")
    else:
        msg += index.to_bytes(4, "little")
    if annex is not None:
        msg += _sha(compact.to_bytes(len(annex)) + annex)
    if outputs_kind == _SINGLE:
        msg += _sha(tx.vout[index].serialize())
    if leaf is not None:
        msg += hashes.tagged_hash("TapLeaf", b"\xc0" + Script(leaf).serialize())
        msg += b"\x00" + b"\xff\xff\xff\xff"  # key version 0, no code separator
    return hashes.tagged_hash("TapSighash", bytes(msg))
