"""``arkrelay_core.bitcoin`` against @scure/btc-signer 2.0.1 (the version @arkade-os/sdk
0.4.56 pins), under node: every hash type on every input of BIP 341's vector tx, key path
and tapscript. BIP 341 publishes no tapscript digests, so this is the check by code that
is not ours for the digests Ark's leaves are signed with.

Without node or ``npm ci --prefix examples/wallet_js`` it is skipped, unless
``ARKRELAY_REQUIRE_NODE=1``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from arkrelay_core.bitcoin import TAPROOT_SIGHASH_TYPES, taproot_sighash
from arkrelay_core.bitcoin._wire import read_tx
from tests.bitcoin.vectors import spent_outputs, unsigned_tx
from tests.support import need_node

pytestmark = pytest.mark.node

WALLET_DIR = Path(__file__).resolve().parents[2] / "examples" / "wallet_js"
SCRIPT = Path(__file__).parent / "scure_sighash.mjs"
LEAF = bytes.fromhex("20" + "11" * 32 + "ad20" + "22" * 32 + "ac")


def test_every_hash_type_agrees_with_scure_btc_signer() -> None:
    need_node(WALLET_DIR, ["@scure/btc-signer"])
    tx, spent = unsigned_tx(), spent_outputs()
    outputs = len(read_tx(tx).outputs)
    cases = [
        (index, hash_type, leaf)
        for index in range(len(spent))
        for hash_type in sorted(TAPROOT_SIGHASH_TYPES)
        # scure signs SINGLE without its output over 32 zero bytes; BIP 341 has no digest.
        if hash_type & 0x03 != 0x03 or index < outputs
        for leaf in (None, LEAF)
    ]
    request = {
        "tx": tx.hex(),
        "prevouts": [[script.hex(), amount] for script, amount in spent],
        "cases": [[i, t, None if leaf is None else leaf.hex()] for i, t, leaf in cases],
    }
    done = subprocess.run(
        ["node", str(SCRIPT), str(WALLET_DIR)],
        input=json.dumps(request).encode(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    theirs = json.loads(done.stdout)
    ours = [taproot_sighash(tx, i, spent, t, leaf=leaf).hex() for i, t, leaf in cases]
    assert len(theirs) == len(cases) == 98  # 9 inputs, 7 types, 2 paths, less SINGLE's 28
    assert ours == theirs
