"""The gateway's own side of the Ark ledger: VTXO colours, and paying from its inventory.

Colours (asset id and amount of each VTXO) are recorded when an ark transaction the
gateway drove is final. The gateway pays lifts and refunds from VTXOs its service key
owns, signing both rounds itself.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import ArkRelayError
from ..interfaces import InputSignature, InputToSign
from ..store.models import L2Transaction
from ..store.models import Vtxo as VtxoRow
from .spend import Coloured, Leg, Output

if TYPE_CHECKING:
    from .engine import Engine

__all__ = [
    "colour_rows",
    "issue_asset",
    "record_colours",
    "record_pending",
    "send_from_gateway",
    "send_status",
]


#: ``record(plan)`` stores a send's plan (txid, inputs, outputs) before SubmitTx, so that
#: a restart can tell a finished send from one never made (see :func:`send_status`).
Record = Callable[[dict[str, Any]], Awaitable[None]]


async def send_from_gateway(
    engine: Engine, outputs: list[Output], record: Record
) -> tuple[str, list[Output]]:
    """Pay ``outputs`` from the gateway's own VTXOs, signing with the service key.

    Returns the ark txid and the outputs as created (change to the gateway last).
    """
    gateway = engine.identity.pubkey
    leg = Leg(gateway, tuple(outputs))
    try:
        inputs, all_outputs = await engine.flows.ark.plan(leg)
    except ArkRelayError as exc:
        raise ArkRelayError(
            f"the gateway's inventory cannot pay this: {exc}", code=exc.code
        ) from exc
    spend = await engine.flows.ark.build(inputs, all_outputs)
    await record(
        {
            "ark_txid": spend["ark_txid"],
            "inputs": [c.vtxo_id for c in inputs],
            "outputs": spend["outputs"],
        }
    )
    sign = engine.identity.sign_hash
    items = [msgspec.convert(s, InputToSign) for s in spend["to_sign"]]
    signed = engine.flows.ark.backend.add_signatures(
        spend["ark_tx"],
        [InputSignature(s.input_index, gateway, sign(s.sighash)) for s in items],
    )
    submitted = await engine.flows.ark.backend.submit_tx(signed, spend["checkpoint_txs"])
    finals = [
        engine.flows.ark.backend.add_signatures(
            s.psbt, [InputSignature(s.input_index, gateway, sign(s.sighash))]
        )
        for s in submitted.to_sign
    ]
    await engine.flows.ark.backend.finalize_tx(submitted.ark_txid, finals)
    await engine.store.run(
        lambda db: record_colours(db, inputs, all_outputs, submitted.ark_txid, time.time())
    )
    return submitted.ark_txid, all_outputs


async def send_status(engine: Engine, plan: dict[str, Any] | None) -> str:
    """What became of a recorded send: ``done`` (final), ``not_sent`` (its inputs are
    untouched, so sending again pays once), or ``stuck`` (submitted, never finalized)."""
    if plan is None:
        return "not_sent"
    backend = engine.flows.ark.backend
    if await backend.get_vtxos([f"{plan['ark_txid']}:0"]):
        return "done"
    inputs = await backend.get_vtxos(plan["inputs"])
    if len(inputs) == len(plan["inputs"]) and all(v.status == "spendable" for v in inputs):
        return "not_sent"
    return "stuck"


def colour_rows(db: Session, vtxo_ids: list[str]) -> dict[str, tuple[str, int]]:
    if not vtxo_ids:
        return {}
    rows = db.execute(
        sa.select(VtxoRow.vtxo_id, VtxoRow.asset_id, VtxoRow.amount).where(
            VtxoRow.vtxo_id.in_(vtxo_ids)
        )
    )
    return {vid: (asset, amount) for vid, asset, amount in rows}


def record_colours(
    db: Session, inputs: list[Coloured], outputs: list[Output], ark_txid: str, now: float
) -> None:
    """The gateway's ledger: inputs spent, outputs created with their colours, and the
    transaction itself for the settlement period it falls in."""
    if db.get(L2Transaction, ark_txid) is None:
        db.add(L2Transaction(ark_txid=ark_txid, finalized_at=int(now)))
    for c in inputs:
        row = db.get(VtxoRow, c.vtxo_id)
        if row is None:
            row = VtxoRow(
                vtxo_id=c.vtxo_id,
                owner=c.owner,
                asset_id=c.asset_id,
                amount=c.amount,
                expires_at=c.expires_at,
                created_at=int(now),
                status="spent",
            )
            db.add(row)
        row.status, row.spent_by = "spent", ark_txid
    _add_outputs(db, outputs, ark_txid, "spendable", now)


def record_pending(
    db: Session, inputs: list[Coloured], outputs: list[Output], ark_txid: str, now: float
) -> None:
    """An ark transaction the Ark server holds and its wallet may finalize without the
    gateway: its outputs' colours are known now (its VTXOs carry them once it is final)."""
    for c in inputs:
        row = db.get(VtxoRow, c.vtxo_id)
        if row is not None and row.status == "spendable":
            row.status, row.spent_by = "pending", ark_txid
    _add_outputs(db, outputs, ark_txid, "pending", now)


def _add_outputs(
    db: Session, outputs: list[Output], ark_txid: str, status: str, now: float
) -> None:
    """Record the colours of ``ark_txid``'s outputs (each once, whoever comes first)."""
    for i, o in enumerate(outputs):
        vtxo_id = f"{ark_txid}:{i}"
        if db.get(VtxoRow, vtxo_id) is None:
            db.add(
                VtxoRow(
                    vtxo_id=vtxo_id,
                    owner=o.owner,
                    asset_id=o.asset_id,
                    amount=o.amount,
                    status=status,
                    ark_txid=ark_txid,
                    expires_at=0,
                    created_at=int(now),
                )
            )


async def issue_asset(engine: Engine, owner: str, asset_id: str, amount: int) -> str:
    """Give ``owner`` a new VTXO carrying ``amount`` of ``asset_id``: the issuer's side of
    a mint in the colour model (1 unit = 1 sat). Needs a backend that can fund a key on
    request (the arkd simulator); real arkd raises UnsupportedOperation. Returns its id."""
    asset_id = engine.assets.resolve(asset_id)
    if engine.ark is None:
        raise ArkRelayError("no Ark backend to issue on")
    vtxo = await engine.ark.board(owner, amount)

    def record(db: Session) -> None:
        db.add(
            VtxoRow(
                vtxo_id=vtxo.vtxo_id,
                owner=owner,
                asset_id=asset_id,
                amount=amount,
                status="spendable",
                expires_at=vtxo.expires_at,
                created_at=int(time.time()),
            )
        )

    await engine.store.run(record)
    return vtxo.vtxo_id
