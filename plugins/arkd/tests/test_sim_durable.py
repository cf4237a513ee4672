"""The simulator's ledger on disk: a gateway killed and started again finds arkd's state
(server keys, VTXOs, what was spent) where it left it, as with a real arkd."""

from __future__ import annotations

from pathlib import Path

import pytest

from arkrelay_arkd.sim import Ledger
from arkrelay_core.nostr import bip340


def _owner() -> bytes:
    return bip340.xonly_public_key(bip340.generate_secret_key())


def test_a_reopened_ledger_has_the_same_keys_and_vtxos(tmp_path: Path) -> None:
    state = tmp_path / "sim-arkd.json"
    first = Ledger(state_file=state)
    owner = _owner()
    kept = first.board(owner, 5_000)
    gone = first.board(owner, 7_000)
    first.expire(gone.outpoint)

    again = Ledger(state_file=state)
    assert again.signer_xonly == first.signer_xonly
    assert again.info()["digest"] == first.info()["digest"]
    found = {v.outpoint: v for v in again.get_vtxos(outpoints=[kept.outpoint, gone.outpoint])}
    assert found[kept.outpoint].amount == 5_000
    assert again.is_expired(found[gone.outpoint]) and not again.is_expired(found[kept.outpoint])
    assert again.batches == 2


def test_state_of_another_network_or_unreadable_state_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "sim-arkd.json"
    Ledger(state_file=state).board(_owner(), 1_000)
    with pytest.raises(ValueError, match="for regtest, not signet"):
        Ledger(network="signet", state_file=state)
    state.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable arkd simulator state"):
        Ledger(state_file=state)
