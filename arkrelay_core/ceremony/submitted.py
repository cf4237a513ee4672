"""After SubmitTx: a session whose ark transaction the Ark server accepted (PROTOCOL.md §3).

From SubmitTx on, the wallet's inputs are locked at the Ark server by that transaction, so
the gateway never gives up on it of its own accord: a bad checkpoint signature or a step
that ran out of time is answered with the same challenge again (same step, same
``payload_to_sign``, same `d` so relays replace the old one), a backend that fails is
tried again, and at the session deadline the session ends with a 31341 (3002) carrying
what the wallet needs to finalize the transaction itself (``pending_tx``).

Functions taking ``db`` run inside one :meth:`Store.run` transaction.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError
from ..interfaces import InputSignature
from ..nostr import Event
from ..outbox import enqueue
from ..protocol import PendingArkTx, SessionState
from ..protocol.signing import Challenge
from ..store.models import Batch, CeremonySession
from ..store.models import Challenge as ChallengeRow
from .ledger import record_pending
from .ports import Ports
from .proofs import recovering
from .records import (
    FINAL,
    Transition,
    challenge_row,
    legs_of,
    lock_session,
    move,
    signatures,
)
from .spend import Coloured, Output
from .spends import spend_of
from .state import Next

__all__ = ["SUBMITTED_STATES", "Submitted", "is_submitted"]

log = logging.getLogger(__name__)

#: States in which the session's ark transaction is accepted but not yet final.
SUBMITTED_STATES = (SessionState.CHECKPOINT_TXS_PREPARED, SessionState.SIGNATURES_COLLECTED)
#: Seconds before a post-SubmitTx step that failed on a backend is tried again.
RETRY_AFTER = 2.0


def is_submitted(row: CeremonySession) -> bool:
    """Whether the Ark server holds ``row``'s ark transaction, not yet finalized (or may
    hold it: a SubmitTx answer being recovered, see ``recover``)."""
    if recovering(row.context):
        return True
    return SessionState(row.state) in SUBMITTED_STATES and "payloads" not in row.context


class Submitted:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    # ------------------------------------------------------------------ challenging again

    def rechallenge(
        self,
        db: Session,
        row: CeremonySession,
        now: float,
        current: ChallengeRow | None = None,
    ) -> Event:
        """Send the current step's challenge again: same payload, a fresh event, a new step
        deadline (never past the session's). ``current``: its row, if at hand."""
        current = current or challenge_row(db, row.id, row.step_index)
        assert current is not None, f"session {row.id} has no challenge {row.step_index}"
        step_expires = int(min(row.expires_at, now + self.ports.settings.step_timeout.seconds))
        challenge = msgspec.convert({**current.content, "expires_at": step_expires}, Challenge)
        event = self.ports.messages.challenge(
            challenge,
            author=row.author,
            intent_id=row.intent_event_id,
            scheme=row.scheme,
            created_at=max(int(now), current.created_at + 1),
        )
        current.content = msgspec.to_builtins(challenge)
        current.event_id = event.id
        current.created_at = event.created_at
        current.expires_at = step_expires
        row.step_expires_at = step_expires
        row.updated_at = int(now)
        enqueue(db, event, now=now)
        self.ports.stats["rechallenges"] += 1
        return event

    def challenged_again(
        self, db: Session, row: CeremonySession, current: ChallengeRow, now: float
    ) -> Next:
        """The author's bad answer to the current step: challenge it again (a response
        outcome, see ``Responses.after_response``). At most one fresh challenge a second: a
        later one goes out when the step's deadline, moved to the next second, falls due,
        so a flood of bad answers neither floods the outbox nor dates events ahead."""
        if current.created_at >= int(now):
            row.step_expires_at = min(row.step_expires_at or row.expires_at, int(now) + 1)
            event_id = None
        else:
            event_id = self.rechallenge(db, row, now, current).id
        return Next(row.id, event_id, float(row.step_expires_at or row.expires_at))

    # ------------------------------------------------------------------ after a failure

    async def on_error(self, session_id: str, exc: ArkRelayError) -> bool:
        """``exc`` stopped a piece of work on ``session_id``: if its transaction was
        submitted, keep the session going (True); False when failing it is right."""

        def run(db: Session) -> tuple[list[Transition], float | None, bool]:
            row = lock_session(db, session_id)
            if row is None or row.state in FINAL or not is_submitted(row):
                return [], None, False
            now = time.time()
            state = SessionState(row.state)
            if state is SessionState.SIGNATURES_COLLECTED and (
                exc.code == ErrorCode.INVALID_SIGNING_RESPONSE
            ):
                return self.collect_again(db, row, now), None, True
            if row.expires_at <= now:
                return self.end_pending(db, row, now, f"the session timed out: {exc}"), None, True
            return [], min(now + RETRY_AFTER, float(row.expires_at)), True

        transitions, again, handled = await self.ports.run(run)
        if handled:
            log.warning("session %s: submitted ark tx kept after: %s", session_id, exc)
        self.ports.transitioned(transitions)
        if again is not None:
            self.ports.deadlines.add(session_id, again)
        return handled

    def collect_again(self, db: Session, row: CeremonySession, now: float) -> list[Transition]:
        """The Ark server refused a checkpoint signature at FinalizeTx: forget the ones that
        do not check (all of them when none is found wrong here) and challenge again."""
        legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
        spend = spend_of(db, row)
        bad = {leg.id: self._bad_steps(db, leg, spend) for leg in legs}
        if not any(bad.values()):
            half = {leg.id: leg.step_total // 2 for leg in legs}
            bad = {leg.id: list(range(half[leg.id] + 1, leg.step_total + 1)) for leg in legs}
        out = []
        for leg in legs:
            if not bad[leg.id]:
                continue
            first = min(bad[leg.id])
            for step in range(first, leg.step_total + 1):
                answer = challenge_row(db, leg.id, step)
                if answer is not None:
                    answer.signature = answer.response_event_id = answer.answered_at = None
            leg.step_index = first
            self.rechallenge(db, leg, now)  # first: the move then carries its step deadline
            out.append(move(db, leg, SessionState.CHECKPOINT_TXS_PREPARED, now=now))
        return out

    def _bad_steps(self, db: Session, leg: CeremonySession, spend: dict[str, Any]) -> list[int]:
        backend = self.ports.ark_backend
        mine = [s for s in spend["submitted"]["to_sign"] if s["owner"] == leg.author]
        answers = signatures(db, leg.id)
        bad = []
        for step, item in enumerate(mine, start=leg.step_total // 2 + 1):
            sig = InputSignature(item["input_index"], leg.author, answers.get(step, ""))
            try:
                backend.add_signatures(item["psbt"], [sig])
            except ArkRelayError:
                bad.append(step)
        return bad

    # ------------------------------------------------------------------ at the deadline

    def at_deadline(
        self, db: Session, row: CeremonySession, now: float
    ) -> tuple[list[Transition], float | None, bool]:
        """A deadline fell due while ``row`` collects checkpoint signatures: at the session's
        end, hand the transaction over; at a step's, challenge the step again. Returns
        what ``Flows.check_deadline`` does next (transitions, next look, drive)."""
        if row.expires_at <= now:
            return self.end_pending(db, row, now, "the signing session timed out"), None, False
        if row.step_expires_at is not None and row.step_expires_at <= now:
            self.rechallenge(db, row, now)
        return [], float(min(row.step_expires_at or row.expires_at, row.expires_at)), False

    def pending_tx(self, db: Session, row: CeremonySession) -> PendingArkTx | None:
        """``row``'s submitted transaction with every checkpoint signature collected; None
        while SubmitTx's answer is being recovered (the wallet asks GetPendingTx itself)."""
        spend = spend_of(db, row)
        if "submitted" not in spend:
            return None
        submitted = spend["submitted"]
        backend = self.ports.ark_backend
        legs = [row] if row.batch_id is None else legs_of(db, row.batch_id)
        signed: dict[str, str] = {}
        for leg in legs:
            answers = signatures(db, leg.id)
            mine = [s for s in submitted["to_sign"] if s["owner"] == leg.author]
            for step, item in enumerate(mine, start=leg.step_total // 2 + 1):
                if step not in answers:
                    continue
                sig = InputSignature(item["input_index"], leg.author, answers[step])
                try:
                    signed[item["psbt"]] = backend.add_signatures(item["psbt"], [sig])
                except ArkRelayError as exc:  # the wallet signs that one again itself
                    log.warning("session %s: step %d not placed: %s", leg.id, step, exc)
        return PendingArkTx(
            ark_txid=submitted["ark_txid"],
            final_ark_tx=submitted["final_ark_tx"],
            checkpoint_txs=[signed.get(p, p) for p in submitted["signed_checkpoint_txs"]],
        )

    def end_pending(
        self,
        db: Session,
        row: CeremonySession,
        now: float,
        message: str,
        *,
        code: ErrorCode = ErrorCode.SIGNING_TIMEOUT,
        state: SessionState = SessionState.EXPIRED,
    ) -> list[Transition]:
        """End ``row`` (and every open leg of its batch) with a 31341 (3002; 3004 when the
        operator cancels) that carries the pending transaction; the outputs' colours are
        recorded now, so that whoever finalizes it, the gateway's ledger reads them right."""
        pending = self.pending_tx(db, row)
        spend = spend_of(db, row)
        record_pending(
            db,
            [msgspec.convert(c, Coloured) for c in spend["inputs"]],
            [msgspec.convert(o, Output) for o in spend["outputs"]],
            spend["ark_txid"],
            now,
        )
        legs = [row]  # ``row`` first: its transition is the first returned
        if row.batch_id is not None:
            legs += [leg for leg in legs_of(db, row.batch_id) if leg.id != row.id]
            batch = db.get(Batch, row.batch_id)
            if batch is not None and batch.state not in FINAL:
                batch.state, batch.updated_at = "failed", int(now)
        if pending is not None:
            text = (
                f"{message}; the Ark server holds ark tx {pending.ark_txid}: sign your "
                "checkpoint inputs in pending_tx.checkpoint_txs and call FinalizeTx"
            )
        else:
            text = (
                f"{message}; the Ark server may hold ark tx {spend['ark_txid']}: prove "
                "ownership of its inputs to GetPendingTx, sign its checkpoints and call "
                "FinalizeTx"
            )
        out = []
        for leg in legs:
            if leg.state in FINAL:
                continue
            notice = self.ports.messages.failure(
                code,
                author=leg.author,
                ref_id=leg.context.get("action_id") or leg.id,
                answered=[leg.intent_event_id],
                scheme=leg.scheme,
                message=text,
                expires_at=leg.expires_at,
                pending_tx=pending,
            )
            out.append(
                move(
                    db,
                    leg,
                    state,
                    events=[notice],
                    now=now,
                    error_code=int(code),
                    error_message=text,
                )
            )
        self.ports.stats["pending_handed_over"] += 1
        log.warning("session %s: ark tx %s handed over to its wallet", row.id, spend["ark_txid"])
        return out
