"""The end of an ark transaction's ceremony: FinalizeTx with every checkpoint signature,
the colours recorded, and the 31340 that completes the session (or every leg of its batch).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from ..protocol import Confirmation, Fee, SessionState, VtxoMove
from ..protocol.tags import batch_confirmation_d, confirmation_d
from ..store.models import Batch, CeremonySession
from .ledger import record_colours
from .ports import Ports
from .records import Transition, legs_of, move, signatures
from .spend import Coloured, Output
from .spends import checkpoint_finals, in_hand, leader, spend_of
from .state import Held, Snap, lock_snapshot
from .steps import hand_over

__all__ = ["Finalizer", "confirm", "finalized_elsewhere"]


class Finalizer:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    async def finalize(self, snap: Snap) -> Held:
        ports = self.ports
        prep = in_hand(snap)
        fresh = prep is not None
        if prep is not None:
            spend, answers = prep
            finals = checkpoint_finals(
                ports.ark_backend, spend, snap.author, answers, snap.step_total
            )
            prep = spend, finals
        else:
            prep = await ports.run(self._signed_checkpoints, snap.id)
        if prep is None:
            return None
        spend, finals = prep
        ark_txid = spend["ark_txid"]
        outputs = [msgspec.convert(o, Output) for o in spend["outputs"]]
        created_ids = [f"{ark_txid}:{i}" for i in range(len(outputs))]
        backend = ports.ark_backend
        # Handed over by the transaction that recorded the last checkpoint signature, the
        # session has had no FinalizeTx accepted (one refused sent it back to collecting):
        # only a session read afresh may have been finalized unheard before a stop.
        if fresh or not await backend.get_vtxos(created_ids[:1]):
            await backend.finalize_tx(ark_txid, finals)

        def run(db: Session) -> tuple[list[Transition], Held]:
            row = lock_snapshot(db, snap)
            if row is None or row.state != SessionState.SIGNATURES_COLLECTED:
                return [], None
            now = time.time()
            inputs = [msgspec.convert(c, Coloured) for c in spend["inputs"]]
            record_colours(db, inputs, outputs, ark_txid, now)
            legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
            out = [move(db, leg, SessionState.ARK_EXECUTED, now=now) for leg in legs]
            return out, hand_over(ports, db, row, now)

        return ports.handed(await ports.run(run))

    def _signed_checkpoints(
        self, db: Session, session_id: str
    ) -> tuple[dict[str, Any], list[str]] | None:
        row = db.get(CeremonySession, session_id)
        if row is None or not leader(db, row):
            return None
        legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
        if any(leg.state != SessionState.SIGNATURES_COLLECTED for leg in legs):
            return None
        spend = spend_of(db, row)
        backend = self.ports.ark_backend
        finals: list[str] = []
        for leg in legs:
            answers = signatures(db, leg.id)
            finals += checkpoint_finals(backend, spend, leg.author, answers, leg.step_total)
        return spend, finals

    async def complete(self, snap: Snap) -> Held:
        ports = self.ports

        def run(db: Session) -> tuple[list[Transition], Held]:
            row = lock_snapshot(db, snap)
            if row is None or row.state != SessionState.ARK_EXECUTED or not leader(db, row):
                return [], None
            now = time.time()
            out = confirm(ports, db, row, spend_of(db, row), now)
            return out, hand_over(ports, db, row, now)

        return ports.handed(await ports.run(run))


async def finalized_elsewhere(ports: Ports, snap: Snap, spend: dict[str, Any]) -> Held:
    """The wallet finalized the recovered transaction itself: record it as executed."""

    def run(db: Session) -> tuple[list[Transition], Held]:
        row = lock_snapshot(db, snap)
        if row is None or row.state != SessionState.ARK_TX_PREPARED:
            return [], None
        now = time.time()
        inputs = [msgspec.convert(c, Coloured) for c in spend["inputs"]]
        outputs = [msgspec.convert(o, Output) for o in spend["outputs"]]
        record_colours(db, inputs, outputs, spend["ark_txid"], now)
        legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
        out = []
        for leg in legs:
            leg.context = {k: v for k, v in leg.context.items() if k not in ("phase", "recovery")}
            out.append(move(db, leg, SessionState.ARK_EXECUTED, now=now, step_expires_at=None))
        return out, hand_over(ports, db, row, now)

    return ports.handed(await ports.run(run))


def confirm(
    ports: Ports, db: Session, row: CeremonySession, spend: dict[str, Any], now: float
) -> list[Transition]:
    """Publish the 31340 of ``row`` (or its whole batch) and complete every leg."""
    ark_txid = spend["ark_txid"]
    assets = ports.assets
    spent = [
        VtxoMove(c["vtxo_id"], c["owner"], c["asset_id"], c["amount"], assets.ticker(c["asset_id"]))
        for c in spend["inputs"]
    ]
    created = [
        VtxoMove(
            f"{ark_txid}:{i}", o["owner"], o["asset_id"], o["amount"], assets.ticker(o["asset_id"])
        )
        for i, o in enumerate(spend["outputs"])
    ]
    legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
    fee = row.context.get("fee")
    fee_paid = None
    if row.batch_id is None and fee:
        fee_paid = Fee(fee["asset_id"], fee["amount"])
    content = Confirmation(
        status="success",
        ark_txid=ark_txid,
        spent=spent,
        created=created,
        timestamp=int(now),
        ref_action_id=row.context.get("action_id") if row.batch_id is None else None,
        batch_id=row.batch_id,
        fee_paid=fee_paid,
    )
    if row.batch_id is None:
        d = confirmation_d(row.context["action_id"])
    else:
        d = batch_confirmation_d(row.batch_id)
    parties = [m.owner for m in created] + [leg.author for leg in legs]
    event = ports.messages.confirmation(
        content, d=d, answered=[leg.intent_event_id for leg in legs], parties=parties
    )
    if row.batch_id is not None:
        batch = db.get(Batch, row.batch_id)
        assert batch is not None
        batch.state, batch.ark_txid, batch.updated_at = "completed", ark_txid, int(now)
    out = [move(db, row, SessionState.COMPLETED, events=[event], now=now)]
    out += [move(db, leg, SessionState.COMPLETED, now=now) for leg in legs if leg.id != row.id]
    return out
