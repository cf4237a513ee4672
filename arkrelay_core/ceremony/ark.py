"""The Ark side of a session: build the spend, map steps to inputs, submit, finalize.

An ark transaction belongs to one session, or to every leg of a batch (then it is kept
on the batch row and the first leg by id does the batch's backend work). Signatures are
the challenges' answers; the transaction itself is rebuilt from them, never trusted from
memory, so any instance can pick the work up after a crash.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError, BackendUnavailable, VtxoAlreadySpent, VtxoExpired
from ..interfaces import InputSignature, InputToSign, SubmittedTx, Vtxo
from ..protocol import BUILTIN_PARAMS, Confirmation, Fee, SessionState, VtxoMove
from ..protocol.tags import batch_confirmation_d, confirmation_d
from ..store.models import Batch, CeremonySession
from ..store.models import Intent as IntentRow
from .ledger import colour_rows, record_colours
from .records import FINAL, Transition, legs_of, lock_snapshot, move, signatures
from .recover import Recovery, mark_unsure, proof_steps
from .spend import Coloured, Leg, Output, leg_for, select_inputs

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["ArkSteps"]

#: A session as a step's transaction left it (``Flows.hand_over``); None: read it again.
Held = dict[str, Any] | None

log = logging.getLogger(__name__)


class ArkSteps:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.recovery = Recovery(self)

    @property
    def backend(self) -> Any:
        if self.engine.ark is None:
            raise BackendUnavailable("no Ark backend is configured", code=ErrorCode.ARK_UNAVAILABLE)
        return self.engine.ark

    # ------------------------------------------------------------------ building

    async def leg_of(self, snap: dict[str, Any]) -> Leg:
        intent = snap.get("intent")  # handed over by the transaction that opened it
        if intent is None:
            intent = await self.engine.store.run(_intent_of, snap["intent_event_id"])
        params = msgspec.convert(intent["params"], BUILTIN_PARAMS[intent["type"]])
        ctx = snap["context"]
        fee = ctx.get("fee") or {}
        return leg_for(
            params,
            snap["author"],
            ctx["asset_id"],
            fee.get("asset_id"),
            int(fee.get("amount", 0)),
            self.engine.identity.pubkey,
        )

    async def plan(
        self, leg: Leg, *, exclude: set[str] | frozenset[str] = frozenset()
    ) -> tuple[list[Coloured], list[Output]]:
        owned_raw = await self.backend.list_vtxos(leg.author)
        colours, busy = await self.engine.store.run(
            _colours_and_busy, [v.vtxo_id for v in owned_raw], leg.author
        )
        owned = [self.colour(v, colours) for v in owned_raw]
        known: dict[str, Coloured] = {}
        missing = [v for v in leg.required if v not in {o.vtxo_id for o in owned}]
        if missing:
            found = await self.backend.get_vtxos(missing)
            for vtxo in found:
                if vtxo.owner == leg.author and vtxo.status in ("expired", "swept"):
                    raise VtxoExpired(f"VTXO {vtxo.vtxo_id} has expired")
            known = {v.vtxo_id: self.colour(v, colours) for v in found}
        return select_inputs(
            leg, owned, now=int(time.time()), busy=set(busy) | set(exclude), known=known
        )

    def colour(self, vtxo: Vtxo, colours: dict[str, tuple[str, int]]) -> Coloured:
        asset_id, _ = colours.get(vtxo.vtxo_id, (self.engine.assets.gbtc.asset_id, vtxo.amount))
        return Coloured(
            vtxo.vtxo_id, vtxo.owner, asset_id, vtxo.amount, vtxo.script, vtxo.expires_at
        )

    async def build(self, inputs: list[Coloured], outputs: list[Output]) -> dict[str, Any]:
        built = await self.backend.build_offchain_tx(
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

    async def prepare(self, snap: dict[str, Any]) -> Held:
        if snap["type"] == "lightning:land":
            await self.engine.flows.land.check_land(snap)
        leg = await self.leg_of(snap)
        inputs, outputs = await self.plan(leg)
        spend = await self.build(inputs, outputs)

        def run(db: Session) -> tuple[list[Transition], Held]:
            row = lock_snapshot(db, snap)
            if row is None or row.state != SessionState.INTENT_RECEIVED:
                return [], None
            now = time.time()
            row.context = {**row.context, "spend": spend, "inputs": [c.vtxo_id for c in inputs]}
            mine = [s for s in spend["to_sign"] if s["owner"] == row.author]
            row.step_total = 2 * len(mine)
            event = self.engine.flows.emit_challenge(db, row, 1, now)
            t = move(db, row, SessionState.ARK_TX_PREPARED, events=[event], now=now)
            return [t], self.engine.flows.hand_over(db, row, now)

        return self._transitioned(await self.engine.store.run(run))

    def _transitioned(self, result: tuple[list[Transition], Held]) -> Held:
        transitions, held = result
        self.engine.transitioned(transitions)
        return held

    # ------------------------------------------------------------------ steps

    def spend_of(self, db: Session, row: CeremonySession) -> dict[str, Any]:
        if row.batch_id is not None:
            batch = db.get(Batch, row.batch_id)
            assert batch is not None
            return batch.context["spend"]
        return row.context["spend"]

    def step_item(self, db: Session, row: CeremonySession, step: int) -> InputToSign:
        spend = self.spend_of(db, row)
        mine = [s for s in spend["to_sign"] if s["owner"] == row.author]
        if step > len(mine):
            submitted = spend["submitted"]
            mine = [s for s in submitted["to_sign"] if s["owner"] == row.author]
            step -= row.step_total // 2
        return msgspec.convert(mine[step - 1], InputToSign)

    def round_end(self, row: CeremonySession) -> int:
        half = row.step_total // 2
        return half if row.step_index <= half else row.step_total

    def sign_tx_context(self, row: CeremonySession, item: InputToSign) -> dict[str, Any]:
        ctx = row.context
        asset_id = ctx.get("asset_id") or self.engine.assets.gbtc.asset_id
        ticker = self.engine.assets.ticker(asset_id)
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
            "ticker": ticker,
            "recipient_pubkey": intent_params.get("recipient_pubkey"),
        }

    def ark_round_done(self, db: Session, row: CeremonySession, now: float) -> list[str]:
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

    def leader(self, db: Session, row: CeremonySession) -> bool:
        return row.batch_id is None or legs_of(db, row.batch_id)[0].id == row.id

    # ------------------------------------------------------------------ submit, finalize

    async def submit(self, snap: dict[str, Any]) -> Held:
        """SubmitTx once: the answer is recorded (with the checkpoint challenges it
        leads to, in one transaction) before anything else. A call that may have been
        accepted unheard is never repeated: its answer is recovered (``recover``)."""
        prep = _in_hand(snap)
        if prep is not None:
            spend, answers = prep
            prep = spend, _ark_signatures(spend, snap["author"], answers)
        else:
            prep = await self.engine.store.run(self._signed_ark_round, snap["id"])
        if prep is None:
            return None
        spend, sigs = prep
        if proof_steps(snap["context"]):
            fetched = await self.recovery.fetch(snap, spend)
            if not isinstance(fetched, SubmittedTx):
                return fetched
            return await self._record_submitted(snap, spend, fetched)
        if await self.recovery.locked(spend):
            return await self.recovery.start(snap, spend)
        signed = self.backend.add_signatures(spend["ark_tx"], sigs)
        try:
            submitted: SubmittedTx = await self.backend.submit_tx(signed, spend["checkpoint_txs"])
        except BackendUnavailable:
            # Refused or accepted, nobody can tell: never failed from here (see recover).
            await self.engine.store.run(mark_unsure, snap)
            raise
        except VtxoAlreadySpent as exc:
            # A transport retry of SubmitTx after arkd accepted the first attempt unheard
            # is refused as a duplicate: that is our own tx holding the inputs.
            if await self.recovery.locked(spend):
                return await self.recovery.start(snap, spend)
            await self.engine.flows.fail(snap["id"], exc.code, str(exc))
            return None
        return await self._record_submitted(snap, spend, submitted)

    async def _record_submitted(
        self, snap: dict[str, Any], spend: dict[str, Any], submitted: SubmittedTx
    ) -> Held:
        if submitted.ark_txid != spend["ark_txid"]:
            raise ArkRelayError(
                f"the Ark server answered for ark tx {submitted.ark_txid}, not {spend['ark_txid']}",
                code=ErrorCode.INTERNAL,
            )

        def run(db: Session) -> tuple[list[Transition], Held]:
            row = lock_snapshot(db, snap)
            if row is None or row.state != SessionState.ARK_TX_PREPARED:
                return [], None
            now = time.time()
            legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
            new_spend = {**spend, "submitted": msgspec.to_builtins(submitted)}
            if row.batch_id is not None:
                batch = db.get(Batch, row.batch_id)
                assert batch is not None
                batch.context = {**batch.context, "spend": new_spend}
                batch.ark_txid = submitted.ark_txid
            else:
                row.context = {**row.context, "spend": new_spend}
            out = []
            for leg in legs:
                leg.context = {
                    k: v for k, v in leg.context.items() if k not in ("phase", "recovery")
                }
                event = self.engine.flows.emit_challenge(db, leg, leg.step_total // 2 + 1, now)
                out.append(
                    move(db, leg, SessionState.CHECKPOINT_TXS_PREPARED, events=[event], now=now)
                )
            return out, self.engine.flows.hand_over(db, row, now)

        return self._transitioned(await self.engine.store.run(run))

    async def finalized_elsewhere(self, snap: dict[str, Any], spend: dict[str, Any]) -> Held:
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
                leg.context = {
                    k: v for k, v in leg.context.items() if k not in ("phase", "recovery")
                }
                out.append(move(db, leg, SessionState.ARK_EXECUTED, now=now, step_expires_at=None))
            return out, self.engine.flows.hand_over(db, row, now)

        return self._transitioned(await self.engine.store.run(run))

    def _signed_ark_round(
        self, db: Session, session_id: str
    ) -> tuple[dict[str, Any], list[InputSignature]] | None:
        row = db.get(CeremonySession, session_id)
        if row is None or not self.leader(db, row):
            return None
        spend = self.spend_of(db, row)
        legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
        sigs: list[InputSignature] = []
        for leg in legs:
            sigs += _ark_signatures(spend, leg.author, signatures(db, leg.id))
        return spend, sigs

    async def finalize(self, snap: dict[str, Any]) -> Held:
        prep = _in_hand(snap)
        if prep is not None:
            spend, answers = prep
            finals = self._checkpoint_finals(spend, snap["author"], answers, snap["step_total"])
            prep = spend, finals
        else:
            prep = await self.engine.store.run(self._signed_checkpoints, snap["id"])
        if prep is None:
            return None
        spend, finals = prep
        ark_txid = spend["ark_txid"]
        outputs = [msgspec.convert(o, Output) for o in spend["outputs"]]
        created_ids = [f"{ark_txid}:{i}" for i in range(len(outputs))]
        already = await self.backend.get_vtxos(created_ids[:1])
        if not already:
            await self.backend.finalize_tx(ark_txid, finals)

        def run(db: Session) -> tuple[list[Transition], Held]:
            row = lock_snapshot(db, snap)
            if row is None or row.state != SessionState.SIGNATURES_COLLECTED:
                return [], None
            now = time.time()
            inputs = [msgspec.convert(c, Coloured) for c in spend["inputs"]]
            record_colours(db, inputs, outputs, ark_txid, now)
            legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
            out = [move(db, leg, SessionState.ARK_EXECUTED, now=now) for leg in legs]
            return out, self.engine.flows.hand_over(db, row, now)

        return self._transitioned(await self.engine.store.run(run))

    def _signed_checkpoints(
        self, db: Session, session_id: str
    ) -> tuple[dict[str, Any], list[str]] | None:
        row = db.get(CeremonySession, session_id)
        if row is None or not self.leader(db, row):
            return None
        legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
        if any(leg.state != SessionState.SIGNATURES_COLLECTED for leg in legs):
            return None
        spend = self.spend_of(db, row)
        finals: list[str] = []
        for leg in legs:
            answers = signatures(db, leg.id)
            finals += self._checkpoint_finals(spend, leg.author, answers, leg.step_total)
        return spend, finals

    def _checkpoint_finals(
        self, spend: dict[str, Any], author: str, answers: dict[int, str], step_total: int
    ) -> list[str]:
        """``author``'s checkpoint transactions with their signatures (steps after half)."""
        mine = [s for s in spend["submitted"]["to_sign"] if s["owner"] == author]
        return [
            self.backend.add_signatures(
                item["psbt"], [InputSignature(item["input_index"], author, answers[step])]
            )
            for step, item in enumerate(mine, start=step_total // 2 + 1)
        ]

    # ------------------------------------------------------------------ completing

    async def complete(self, snap: dict[str, Any]) -> Held:
        def run(db: Session) -> tuple[list[Transition], Held]:
            row = lock_snapshot(db, snap)
            if row is None or row.state != SessionState.ARK_EXECUTED or not self.leader(db, row):
                return [], None
            now = time.time()
            out = self.confirm(db, row, self.spend_of(db, row), now)
            return out, self.engine.flows.hand_over(db, row, now)

        return self._transitioned(await self.engine.store.run(run))

    def confirm(
        self,
        db: Session,
        row: CeremonySession,
        spend: dict[str, Any],
        now: float,
        *,
        extra: dict[str, Any] | None = None,
    ) -> list[Transition]:
        """Publish the 31340 of ``row`` (or its whole batch) and complete every leg."""
        ark_txid = spend["ark_txid"]
        assets = self.engine.assets
        spent = [
            VtxoMove(
                c["vtxo_id"], c["owner"], c["asset_id"], c["amount"], assets.ticker(c["asset_id"])
            )
            for c in spend["inputs"]
        ]
        created = [
            VtxoMove(
                f"{ark_txid}:{i}",
                o["owner"],
                o["asset_id"],
                o["amount"],
                assets.ticker(o["asset_id"]),
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
        event = self.engine.messages.confirmation(
            content, d=d, answered=[leg.intent_event_id for leg in legs], parties=parties
        )
        if row.batch_id is not None:
            batch = db.get(Batch, row.batch_id)
            assert batch is not None
            batch.state, batch.ark_txid, batch.updated_at = "completed", ark_txid, int(now)
        out = [move(db, row, SessionState.COMPLETED, events=[event], now=now)]
        out += [move(db, leg, SessionState.COMPLETED, now=now) for leg in legs if leg.id != row.id]
        return out


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


def _intent_of(db: Session, event_id: str) -> dict[str, Any]:
    row = db.get(IntentRow, event_id)
    assert row is not None
    return {"type": row.type, "params": row.params}


def _in_hand(snap: dict[str, Any]) -> tuple[dict[str, Any], dict[int, str]] | None:
    """The spend and the signatures a handed-over snapshot carries (a lone session's)."""
    if "signatures" not in snap or snap["batch_id"] is not None:
        return None
    return snap["context"]["spend"], snap["signatures"]


def _ark_signatures(
    spend: dict[str, Any], author: str, answers: dict[int, str]
) -> list[InputSignature]:
    """``author``'s signatures on the ark transaction (the first round's steps)."""
    mine = [s for s in spend["to_sign"] if s["owner"] == author]
    return [
        InputSignature(item["input_index"], author, answers[step])
        for step, item in enumerate(mine, start=1)
    ]
