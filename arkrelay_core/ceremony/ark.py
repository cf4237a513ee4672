"""The Ark side of a session, up to its first challenge: plan the inputs, build the spend.

An ark transaction belongs to one session, or to every leg of a batch (then it is kept
on the batch row and the first leg by id does the batch's backend work). Signatures are
the challenges' answers; the transaction itself is rebuilt from them, never trusted from
memory, so any instance can pick the work up after a crash.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import VtxoExpired
from ..interfaces import Vtxo
from ..protocol import BUILTIN_PARAMS, SessionState
from ..store.models import CeremonySession
from ..store.models import Intent as IntentRow
from .challenges import emit_challenge
from .ledger import colour_rows
from .ports import Ports
from .records import FINAL, Transition, move
from .spend import Coloured, Leg, Output, leg_for, select_inputs
from .state import Held, IntentRef, Snap, lock_snapshot
from .steps import hand_over

__all__ = ["ArkSteps"]


class ArkSteps:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    async def leg_of(self, snap: Snap) -> Leg:
        intent = snap.intent  # handed over by the transaction that opened it
        if intent is None:
            intent = await self.ports.run(_intent_of, snap.intent_event_id)
        params = msgspec.convert(intent.params, BUILTIN_PARAMS[intent.type])
        ctx = snap.context
        fee = ctx.get("fee") or {}
        return leg_for(
            params,
            snap.author,
            ctx["asset_id"],
            fee.get("asset_id"),
            int(fee.get("amount", 0)),
            self.ports.identity.pubkey,
        )

    async def plan(
        self, leg: Leg, *, exclude: set[str] | frozenset[str] = frozenset()
    ) -> tuple[list[Coloured], list[Output]]:
        backend = self.ports.ark_backend
        owned_raw = await backend.list_vtxos(leg.author)
        colours, busy = await self.ports.run(
            _colours_and_busy, [v.vtxo_id for v in owned_raw], leg.author
        )
        owned = [self.colour(v, colours) for v in owned_raw]
        known: dict[str, Coloured] = {}
        missing = [v for v in leg.required if v not in {o.vtxo_id for o in owned}]
        if missing:
            found = await backend.get_vtxos(missing)
            for vtxo in found:
                if vtxo.owner == leg.author and vtxo.status in ("expired", "swept"):
                    raise VtxoExpired(f"VTXO {vtxo.vtxo_id} has expired")
            known = {v.vtxo_id: self.colour(v, colours) for v in found}
        return select_inputs(
            leg, owned, now=int(time.time()), busy=set(busy) | set(exclude), known=known
        )

    def colour(self, vtxo: Vtxo, colours: dict[str, tuple[str, int]]) -> Coloured:
        asset_id, _ = colours.get(vtxo.vtxo_id, (self.ports.assets.gbtc.asset_id, vtxo.amount))
        return Coloured(
            vtxo.vtxo_id, vtxo.owner, asset_id, vtxo.amount, vtxo.script, vtxo.expires_at
        )

    async def build(self, inputs: list[Coloured], outputs: list[Output]) -> dict[str, Any]:
        built = await self.ports.ark_backend.build_offchain_tx(
            [c.vtxo() for c in inputs], [o.spec() for o in outputs]
        )
        return {
            "ark_txid": built.ark_txid,
            "ark_tx": built.ark_tx,
            "checkpoint_txs": list(built.checkpoint_txs),
            "to_sign": msgspec.to_builtins(built.to_sign),
            "inputs": msgspec.to_builtins(inputs),
            "outputs": msgspec.to_builtins(outputs),
        }

    async def prepare(self, snap: Snap) -> Held:
        """Plan and build a lone session's spend, then send its first challenge."""
        leg = await self.leg_of(snap)
        inputs, outputs = await self.plan(leg)
        spend = await self.build(inputs, outputs)
        ports = self.ports

        def run(db: Session) -> tuple[list[Transition], Held]:
            row = lock_snapshot(db, snap)
            if row is None or row.state != SessionState.INTENT_RECEIVED:
                return [], None
            now = time.time()
            row.context = {**row.context, "spend": spend, "inputs": [c.vtxo_id for c in inputs]}
            mine = [s for s in spend["to_sign"] if s["owner"] == row.author]
            row.step_total = 2 * len(mine)
            event = emit_challenge(ports, db, row, 1, now)
            t = move(db, row, SessionState.ARK_TX_PREPARED, events=[event], now=now)
            return [t], hand_over(ports, db, row, now)

        return ports.handed(await ports.run(run))


def _busy_inputs(db: Session, author: str) -> list[str]:
    rows = db.scalars(
        sa.select(CeremonySession.context).where(
            CeremonySession.author == author, CeremonySession.state.not_in(FINAL)
        )
    ).all()
    return [vid for ctx in rows for vid in (ctx or {}).get("inputs", [])]


def _colours_and_busy(
    db: Session, vtxo_ids: list[str], author: str
) -> tuple[dict[str, tuple[str, int]], list[str]]:
    """What planning a spend reads, in one transaction: the colours of ``vtxo_ids`` and the
    inputs ``author``'s open sessions hold."""
    return colour_rows(db, vtxo_ids), _busy_inputs(db, author)


def _intent_of(db: Session, event_id: str) -> IntentRef:
    row = db.get(IntentRow, event_id)
    assert row is not None
    return IntentRef(row.type, row.params)
