"""BIP 341's wallet test vectors, loaded once for every test that checks a taproot sighash.

Data: ``tests/data/bip341-wallet-test-vectors.json`` is ``bip-0341/wallet-test-vectors.json``
from bitcoin/bips at commit 7fe0b034ec967b52a5a28276419117326df93263, unchanged. Plugin
tests read it through this module (the repository's one copy).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = [
    "KEY_PATH",
    "SPENDS",
    "VECTORS",
    "spent_outputs",
    "tapscript_sig_message",
    "unsigned_tx",
]

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "bip341-wallet-test-vectors.json").read_text()
)
KEY_PATH = VECTORS["keyPathSpending"][0]
#: One case per input the vectors sign: given (txinIndex, hashType), intermediary (sigMsg,
#: sigHash), expected (witness).
SPENDS = KEY_PATH["inputSpending"]


def unsigned_tx() -> bytes:
    return bytes.fromhex(KEY_PATH["given"]["rawUnsignedTx"])


def spent_outputs() -> list[tuple[bytes, int]]:
    """(scriptPubKey, amount) of the output each input spends."""
    return [
        (bytes.fromhex(u["scriptPubKey"]), u["amountSats"]) for u in KEY_PATH["given"]["utxosSpent"]
    ]


def _tagged(tag: str, data: bytes) -> bytes:
    digest = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(digest + digest + data).digest()


def tapscript_sig_message(case: dict, leaf: bytes) -> bytes:
    """BIP 342's message for ``case``'s input and hash type, spending tapscript ``leaf``
    (leaf version 0xc0, no OP_CODESEPARATOR), derived from the vector's published key-path
    SigMsg: spend_type gets its ext_flag bit, and the leaf hash, key_version 0 and
    codesep_pos 0xffffffff are appended. BIP 341 publishes no tapscript messages; this
    derivation uses nothing but the vector and BIP 341/342's text."""
    hash_type = case["given"]["hashType"]
    message = bytearray.fromhex(case["intermediary"]["sigMsg"])
    # epoch, hash_type, version, locktime; the four input sha256s unless ANYONECANPAY; the
    # outputs' sha256 unless NONE or SINGLE; then spend_type.
    at = 1 + 1 + 4 + 4 + (0 if hash_type & 0x80 else 4 * 32)
    at += 32 if hash_type & 0x03 in (0x00, 0x01) else 0
    if message[at] != 0:
        raise ValueError("the vector is not a key-path spend without annex")
    message[at] = 2
    message += _tagged("TapLeaf", b"\xc0" + bytes([len(leaf)]) + leaf)  # leaf < 253 bytes
    message += b"\x00" + b"\xff\xff\xff\xff"
    return bytes(message)
