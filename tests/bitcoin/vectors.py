"""BIP 341's wallet test vectors, loaded once for every test that checks a taproot sighash.

Data: ``tests/data/bip341-wallet-test-vectors.json`` is ``bip-0341/wallet-test-vectors.json``
from bitcoin/bips at commit 7fe0b034ec967b52a5a28276419117326df93263, unchanged. Plugin
tests read it through this module (the repository's one copy).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["KEY_PATH", "SPENDS", "VECTORS", "spent_outputs", "unsigned_tx"]

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
