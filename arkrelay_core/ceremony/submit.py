"""SubmitTx, once: the ark transaction signed by every author goes to the Ark server, and
its answer is recorded (with the checkpoint challenges it leads to) before anything else.
A call that may have been accepted unheard is never repeated: its answer is recovered
(``recover``)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError, BackendUnavailable, VtxoAlreadySpent
from ..interfaces import InputSignature, SubmittedTx
from ..protocol import SessionState
from ..store.models import Batch, CeremonySession
from .challenges import emit_challenge
from .ports import Driver, Ports
from .proofs import mark_unsure, proof_steps
from .records import Transition, legs_of, move, signatures
from .recover import Recovery
from .spends import ark_signatures, in_hand, leader, spend_of
from .state import Held, Snap, lock_snapshot
from .steps import hand_over

__all__ = ["Submitter"]


class Submitter:
    def __init__(self, ports: Ports, driver: Driver) -> None:
        self.ports = ports
        self.driver = driver
        self.recovery = Recovery(ports, driver)

    async def submit(self, snap: Snap) -> Held:
        ports = self.ports
        prep = in_hand(snap)
        fresh = prep is not None
        if prep is not None:
            spend, answers = prep
            prep = spend, ark_signatures(spend, snap.author, answers)
        else:
            prep = await ports.run(_signed_ark_round, snap.id)
        if prep is None:
            return None
        spend, sigs = prep
        if proof_steps(snap.context):
            fetched = await self.recovery.fetch(snap, spend)
            if not isinstance(fetched, SubmittedTx):
                return fetched
            return await self._record_submitted(snap, spend, fetched)
        # A spend handed over by the transaction that closed its ark round was never
        # submitted (its phase was set in that very transaction): nothing to look up. Any
        # other (a restart, a retry, another instance) asks whether its inputs are held.
        if not fresh and await self.recovery.locked(spend):
            return await self.recovery.start(snap, spend)
        backend = ports.ark_backend
        signed = backend.add_signatures(spend["ark_tx"], sigs)
        try:
            submitted: SubmittedTx = await backend.submit_tx(signed, spend["checkpoint_txs"])
        except BackendUnavailable:
            # Refused or accepted, nobody can tell: never failed from here (see recover).
            await ports.run(mark_unsure, snap)
            raise
        except VtxoAlreadySpent as exc:
            # A transport retry of SubmitTx after arkd accepted the first attempt unheard
            # is refused as a duplicate: that is our own tx holding the inputs.
            if await self.recovery.locked(spend):
                return await self.recovery.start(snap, spend)
            await self.driver.fail(snap.id, exc.code, str(exc))
            return None
        return await self._record_submitted(snap, spend, submitted)

    async def _record_submitted(
        self, snap: Snap, spend: dict[str, Any], submitted: SubmittedTx
    ) -> Held:
        if submitted.ark_txid != spend["ark_txid"]:
            raise ArkRelayError(
                f"the Ark server answered for ark tx {submitted.ark_txid}, not {spend['ark_txid']}",
                code=ErrorCode.INTERNAL,
            )
        ports = self.ports

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
                event = emit_challenge(ports, db, leg, leg.step_total // 2 + 1, now)
                out.append(
                    move(db, leg, SessionState.CHECKPOINT_TXS_PREPARED, events=[event], now=now)
                )
            return out, hand_over(ports, db, row, now)

        return ports.handed(await ports.run(run))


def _signed_ark_round(
    db: Session, session_id: str
) -> tuple[dict[str, Any], list[InputSignature]] | None:
    row = db.get(CeremonySession, session_id)
    if row is None or not leader(db, row):
        return None
    spend = spend_of(db, row)
    legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
    sigs: list[InputSignature] = []
    for leg in legs:
        sigs += ark_signatures(spend, leg.author, signatures(db, leg.id))
    return spend, sigs
