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


_VTXOS = VtxoRow.__table__
_TXS = L2Transaction.__table__
#: The statements of the hot path, built once (SQLAlchemy Core: no ORM loads per step).
_COLOURS = sa.select(_VTXOS.c.vtxo_id, _VTXOS.c.asset_id, _VTXOS.c.amount).where(
    _VTXOS.c.vtxo_id.in_(sa.bindparam("ids", expanding=True))
)
_KNOWN_VTXOS = sa.select(_VTXOS.c.vtxo_id).where(
    _VTXOS.c.vtxo_id.in_(sa.bindparam("ids", expanding=True))
)
_KNOWN_TX = sa.select(_TXS.c.ark_txid).where(_TXS.c.ark_txid == sa.bindparam("txid"))
_ADD_TX = sa.insert(_TXS)
_ADD_VTXOS = sa.insert(_VTXOS)
_SPENT = (
    sa.update(_VTXOS)
    .where(_VTXOS.c.vtxo_id.in_(sa.bindparam("ids", expanding=True)))
    .values(status="spent", spent_by=sa.bindparam("by"))
)
_PENDING = (
    sa.update(_VTXOS)
    .where(
        _VTXOS.c.vtxo_id.in_(sa.bindparam("ids", expanding=True)),
        _VTXOS.c.status == "spendable",
    )
    .values(status="pending", spent_by=sa.bindparam("by"))
)


def colour_rows(db: Session, vtxo_ids: list[str]) -> dict[str, tuple[str, int]]:
    if not vtxo_ids:
        return {}
    rows = db.execute(_COLOURS, {"ids": list(vtxo_ids)})
    return {vid: (asset, amount) for vid, asset, amount in rows}


def record_colours(
    db: Session, inputs: list[Coloured], outputs: list[Output], ark_txid: str, now: float
) -> None:
    """The gateway's ledger: inputs spent, outputs created with their colours, and the
    transaction itself for the settlement period it falls in."""
    if db.execute(_KNOWN_TX, {"txid": ark_txid}).first() is None:
        db.execute(_ADD_TX, {"ark_txid": ark_txid, "finalized_at": int(now)})
    spent = [c.vtxo_id for c in inputs]
    known = _known(db, spent + _output_ids(ark_txid, outputs))
    rows = [
        _row(c.vtxo_id, c.owner, c.asset_id, c.amount, "spent", None, c.expires_at, now)
        for c in inputs
        if c.vtxo_id not in known
    ]
    rows += _output_rows(outputs, ark_txid, "spendable", now, known)
    if rows:
        db.execute(_ADD_VTXOS, rows)
    if spent:
        db.execute(_SPENT, {"ids": spent, "by": ark_txid})


def record_pending(
    db: Session, inputs: list[Coloured], outputs: list[Output], ark_txid: str, now: float
) -> None:
    """An ark transaction the Ark server holds and its wallet may finalize without the
    gateway: its outputs' colours are known now (its VTXOs carry them once it is final)."""
    if inputs:
        db.execute(_PENDING, {"ids": [c.vtxo_id for c in inputs], "by": ark_txid})
    known = _known(db, _output_ids(ark_txid, outputs))
    rows = _output_rows(outputs, ark_txid, "pending", now, known)
    if rows:
        db.execute(_ADD_VTXOS, rows)


def _output_ids(ark_txid: str, outputs: list[Output]) -> list[str]:
    return [f"{ark_txid}:{i}" for i in range(len(outputs))]


def _known(db: Session, vtxo_ids: list[str]) -> set[str]:
    if not vtxo_ids:
        return set()
    return set(db.scalars(_KNOWN_VTXOS, {"ids": vtxo_ids}))


def _output_rows(
    outputs: list[Output], ark_txid: str, status: str, now: float, known: set[str]
) -> list[dict[str, object]]:
    """The rows of ``ark_txid``'s outputs not recorded yet (each once, whoever comes first)."""
    return [
        _row(vtxo_id, o.owner, o.asset_id, o.amount, status, ark_txid, 0, now)
        for vtxo_id, o in zip(_output_ids(ark_txid, outputs), outputs, strict=True)
        if vtxo_id not in known
    ]


def _row(
    vtxo_id: str,
    owner: str,
    asset_id: str,
    amount: int,
    status: str,
    ark_txid: str | None,
    expires_at: int,
    now: float,
) -> dict[str, object]:
    return {
        "vtxo_id": vtxo_id,
        "owner": owner,
        "asset_id": asset_id,
        "amount": amount,
        "status": status,
        "ark_txid": ark_txid,
        "spent_by": None,
        "is_inventory": False,
        "expires_at": expires_at,
        "created_at": int(now),
    }


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
