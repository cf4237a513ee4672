"""An ownership proof's steps on a session that recovers SubmitTx's answer (see
``recover``): how many there are, what each challenge shows, marking a session unsure."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from ..interfaces import InputToSign
from ..protocol import SessionState
from .state import Snap, lock_snapshot

__all__ = [
    "PROOF_LIFETIME",
    "mark_unsure",
    "proof_context",
    "proof_item",
    "proof_steps",
    "recovering",
]

#: Seconds an ownership proof may be used at arkd: enough to collect its signatures (a
#: proof that expires first is built and signed again), short enough to be worthless soon.
PROOF_LIFETIME = 300


def recovering(context: dict[str, Any]) -> bool:
    """Whether a SubmitTx of this session may have been accepted without its answer."""
    return "recovery" in context


def proof_steps(context: dict[str, Any]) -> int:
    """How many proof challenges the session's current recovery has (0: none yet)."""
    proof = (context.get("recovery") or {}).get("proof")
    return len(proof["to_sign"]) if proof else 0


def proof_item(context: dict[str, Any], step: int, step_total: int) -> InputToSign:
    proof = context["recovery"]["proof"]
    return msgspec.convert(proof["to_sign"][step - step_total - 1], InputToSign)


def proof_context(ark_txid: str, item: InputToSign) -> dict[str, Any]:
    """The ``context`` of a proof challenge: nothing moves, so no amount nor recipient."""
    what = "the message input" if not item.vtxo_id else f"your VTXO {item.vtxo_id}"
    return {
        "psbt": item.psbt,
        "input_index": item.input_index,
        "tx_role": "intent_proof",
        "human": (
            f"Prove to the Ark server that you own {what} (input {item.input_index} of an "
            f"ownership proof, message get-pending-tx) to recover ark tx {ark_txid}, which "
            "you already signed; this proof pays nothing and moves no funds"
        ),
        "amount": 0,
        "asset_id": "",
    }


def mark_unsure(db: Session, snap: Snap) -> None:
    """SubmitTx may have taken effect unheard: from now on the session is never failed for
    it, and is never submitted again without checking (one transaction)."""
    row = lock_snapshot(db, snap)
    if row is None or row.state != SessionState.ARK_TX_PREPARED or recovering(row.context):
        return
    row.context = {**row.context, "recovery": {}}
    row.updated_at = int(time.time())
