"""The gateway's own side of the Ark ledger: VTXO colours.

Colours (asset id and amount of each VTXO) are recorded when an ark transaction the
gateway drove is final (paying from the gateway's inventory is ``payouts``).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import ArkRelayError
from ..store.models import L2Transaction
from ..store.models import Vtxo as VtxoRow
from .ports import HasPorts, Ports, ports_of
from .spend import Coloured, Output

__all__ = [
    "colour_rows",
    "issue_asset",
    "record_colours",
    "record_pending",
]


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


async def issue_asset(source: Ports | HasPorts, owner: str, asset_id: str, amount: int) -> str:
    """Give ``owner`` a new VTXO carrying ``amount`` of ``asset_id``: the issuer's side of
    a mint in the colour model (1 unit = 1 sat). Needs a backend that can fund a key on
    request (the arkd simulator); real arkd raises UnsupportedOperation. Returns its id."""
    ports = ports_of(source)
    asset_id = ports.assets.resolve(asset_id)
    if ports.ark is None:
        raise ArkRelayError("no Ark backend to issue on")
    vtxo = await ports.ark.board(owner, amount)

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

    await ports.run(record)
    return vtxo.vtxo_id
