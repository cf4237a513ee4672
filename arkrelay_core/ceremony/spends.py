"""A session's ark transaction as stored: whose inputs each step signs, which signatures
go where. The spend lives on the session (or, for a batch, on its batch row: the first
leg by id does the batch's backend work).

Functions taking ``db`` run inside one :meth:`Store.run` transaction.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.orm import Session

from ..interfaces import ArkBackend, InputSignature, InputToSign
from ..store.models import Batch, CeremonySession
from .assets import AssetBook
from .records import legs_of, signatures
from .state import Held

__all__ = [
    "ark_round_done",
    "ark_signatures",
    "checkpoint_finals",
    "in_hand",
    "leader",
    "round_end",
    "sign_tx_context",
    "spend_of",
    "step_item",
]


def spend_of(db: Session, row: CeremonySession) -> dict[str, Any]:
    if row.batch_id is not None:
        batch = db.get(Batch, row.batch_id)
        assert batch is not None
        return batch.context["spend"]
    return row.context["spend"]


def step_item(db: Session, row: CeremonySession, step: int) -> InputToSign:
    spend = spend_of(db, row)
    mine = [s for s in spend["to_sign"] if s["owner"] == row.author]
    if step > len(mine):
        submitted = spend["submitted"]
        mine = [s for s in submitted["to_sign"] if s["owner"] == row.author]
        step -= row.step_total // 2
    return msgspec.convert(mine[step - 1], InputToSign)


def round_end(row: CeremonySession) -> int:
    half = row.step_total // 2
    return half if row.step_index <= half else row.step_total


def sign_tx_context(assets: AssetBook, row: CeremonySession, item: InputToSign) -> dict[str, Any]:
    ctx = row.context
    asset_id = ctx.get("asset_id") or assets.gbtc.asset_id
    intent_params = ctx.get("figures") or {}
    role = "ark transaction" if item.tx_role == "ark_tx" else "checkpoint transaction"
    human = (
        f"Sign input {item.input_index} of the {role} spending your VTXO {item.vtxo_id} "
        f"for {row.type} {ctx.get('action_id', '')}"
    )
    return {
        "psbt": item.psbt,
        "input_index": item.input_index,
        "tx_role": item.tx_role,
        "human": human,
        "amount": intent_params.get("amount", 0),
        "asset_id": asset_id,
        "ticker": assets.ticker(asset_id),
        "recipient_pubkey": intent_params.get("recipient_pubkey"),
    }


def ark_round_done(db: Session, row: CeremonySession) -> list[str]:
    """``row`` signed its whole ark-tx round: which sessions can go on now."""
    row.step_expires_at = None
    if row.batch_id is None:
        row.context = {**row.context, "phase": "submit"}
        return [row.id]
    legs = legs_of(db, row.batch_id)
    if not all(len(signatures(db, leg.id)) >= leg.step_total // 2 for leg in legs):
        return []
    for leg in legs:
        leg.context = {**leg.context, "phase": "submit"}
    return [legs[0].id]


def leader(db: Session, row: CeremonySession) -> bool:
    return row.batch_id is None or legs_of(db, row.batch_id)[0].id == row.id


def in_hand(snap: Held) -> tuple[dict[str, Any], dict[int, str]] | None:
    """The spend and the signatures a handed-over snapshot carries (a lone session's)."""
    if snap is None or snap.signatures is None or snap.batch_id is not None:
        return None
    return snap.context["spend"], snap.signatures


def ark_signatures(
    spend: dict[str, Any], author: str, answers: dict[int, str]
) -> list[InputSignature]:
    """``author``'s signatures on the ark transaction (the first round's steps)."""
    mine = [s for s in spend["to_sign"] if s["owner"] == author]
    return [
        InputSignature(item["input_index"], author, answers[step])
        for step, item in enumerate(mine, start=1)
    ]


def checkpoint_finals(
    backend: ArkBackend,
    spend: dict[str, Any],
    author: str,
    answers: dict[int, str],
    step_total: int,
) -> list[str]:
    """``author``'s checkpoint transactions with their signatures (steps after half)."""
    mine = [s for s in spend["submitted"]["to_sign"] if s["owner"] == author]
    return [
        backend.add_signatures(
            item["psbt"], [InputSignature(item["input_index"], author, answers[step])]
        )
        for step, item in enumerate(mine, start=step_total // 2 + 1)
    ]
