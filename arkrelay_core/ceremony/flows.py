"""Driving sessions: prepare, challenge, collect, submit, finalize, complete or fail.

``drive`` is the one entry point: it reads the session and does the next piece of work
its state calls for, committing each result with the events it causes, until the
session waits for its wallet or is final. Starting, resuming after a restart and taking
over a dead instance's session are all just ``drive``.

A transaction that moves a session also hands over the session as it leaves it (lease
checked and held, as a claim would): ``drive`` goes on from that instead of reading the
session again, unless another task has had a turn at the session in between.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError
from ..nostr import Event, bip340
from ..outbox import enqueue
from ..protocol import SessionState
from ..protocol.digest import payload_ref, sign_payload_digest
from ..protocol.signing import Challenge, SigningResponse
from ..store.models import Batch, CeremonySession
from ..store.models import Challenge as ChallengeRow
from .ark import ArkSteps
from .batches import prepare_batch
from .land import LandFlows
from .leases import Leases
from .lift import LiftFlows
from .payloads import PayloadSteps
from .records import (
    FINAL,
    WAITING,
    Transition,
    legs_of,
    lock_session,
    move,
    snapshot,
)
from .recover import proof_context, proof_item, proof_steps, recovering
from .submitted import Submitted, is_submitted

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Flows"]

log = logging.getLogger(__name__)

SIGN_TX_DOMAIN = "arkrelay/ark/v1"


class Flows:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ark = ArkSteps(engine)
        self.land = LandFlows(engine, self)
        self.lift = LiftFlows(engine, self)
        self.leases = Leases(engine, self)
        self.payloads = PayloadSteps(engine, self)
        self.submitted = Submitted(engine, self)

    # ------------------------------------------------------------------ drive

    async def drive(
        self, session_id: str, held: dict[str, Any] | None = None, turn: int | None = None
    ) -> None:
        """Drive ``session_id`` until it waits or ends. ``held``: the session as the
        transaction of ``turn`` left it (see :meth:`hand_over`), to start from."""
        engine = self.engine
        async with engine.session_lock(session_id):
            if turn is None or not engine.still_turn(session_id, turn):
                held = None  # someone else had a turn at the session: read it again
            engine.take_turn(session_id)
            while True:
                snap = held or await engine.store.run(self._claim, session_id, time.time())
                if snap is None:
                    break
                try:
                    more = await self._advance(snap)
                except ArkRelayError as exc:
                    if await self.submitted.on_error(session_id, exc):
                        break  # its ark tx is at the Ark server: never failed from here
                    log.info("session %s failed: %d %s", session_id, exc.code, exc)
                    await self.fail(session_id, exc.code, str(exc))
                    break
                if not more:
                    break
                held = more if isinstance(more, dict) else None
        engine.forget_lock(session_id)

    def _claim(self, db: Session, session_id: str, now: float) -> dict[str, Any] | None:
        row = lock_session(db, session_id)
        if row is None or row.state in FINAL or not self.engine.lease_ok(row, now):
            return None
        return snapshot(row)

    def hand_over(
        self,
        db: Session,
        row: CeremonySession,
        now: float,
        *,
        signed: dict[int, str] | None = None,
    ) -> dict[str, Any] | None:
        """``row`` as this transaction leaves it, for ``drive``'s next piece of work: what
        claiming it in a transaction of its own would read, lease checked and held the same
        way. None when this instance may not go on with it. ``signed``: the answered
        challenges' signatures by step (what submitting or finalizing reads), if known."""
        if row.batch_id is not None:
            return None  # other legs' transactions change a leg too, under their own locks
        if row.state not in FINAL and not self.engine.lease_ok(row, now):
            return None
        snap = snapshot(row)
        if signed is not None:
            snap["signatures"] = dict(signed)
        return snap

    async def _advance(self, snap: dict[str, Any]) -> bool | dict[str, Any]:
        """Do the next piece of work; False when the session now waits (or ended); else
        the session as the work left it, or True to read it again."""
        state = SessionState(snap["state"])
        ctx = snap["context"]
        if state is SessionState.INTENT_RECEIVED:
            if snap["batch_id"] is not None:
                await prepare_batch(self.engine, snap)  # the first leg prepares them all
                return False
            if snap["type"] in self.engine.intent_types:
                await self.payloads.prepare(snap)
                return True
            return await self.ark.prepare(snap) or True
        if state in WAITING:
            if ctx.get("phase") == "submit":
                return await self.ark.submit(snap) or True
            self.engine.deadlines.add(snap["id"], snap["step_expires_at"] or snap["expires_at"])
            self.engine.deadlines.add(snap["id"], snap["expires_at"])
            return False
        if state is SessionState.SIGNATURES_COLLECTED:
            if snap["type"] in self.engine.intent_types:
                await self.payloads.execute(snap)
                return True
            return await self.ark.finalize(snap) or True
        if state is SessionState.ARK_EXECUTED:
            if snap["type"] == "lightning:land":
                return await self.land.pay(snap)
            return await self.ark.complete(snap) or True
        return False

    # ------------------------------------------------------------------ challenges

    def emit_challenge(self, db: Session, row: CeremonySession, step: int, now: float) -> Event:
        """Create, store and queue the challenge for ``step`` of ``row`` (one transaction)."""
        spec = self.challenge_spec(db, row, step)
        step_expires = int(min(row.expires_at, now + self.engine.settings.step_timeout.seconds))
        challenge = Challenge(
            session_id=row.id,
            type=spec["type"],
            payload_to_sign=spec["digest"],
            payload_ref=payload_ref(spec["digest"]),
            algo="BIP340",
            domain=spec["domain"],
            step_index=step,
            step_total=spec.get("step_total", row.step_total),
            expires_at=step_expires,
            context=spec["context"],
        )
        event = self.engine.messages.challenge(
            challenge, author=row.author, intent_id=row.intent_event_id, scheme=row.scheme
        )
        db.add(
            ChallengeRow(
                session_id=row.id,
                step_index=step,
                type=spec["type"],
                payload_to_sign=spec["digest"],
                payload_ref=challenge.payload_ref,
                content=msgspec.to_builtins(challenge),
                event_id=event.id,
                created_at=int(now),
                expires_at=step_expires,
            )
        )
        row.step_index = step
        row.step_expires_at = step_expires
        return event

    def challenge_spec(self, db: Session, row: CeremonySession, step: int) -> dict[str, Any]:
        ctx = row.context
        if "payloads" in ctx:
            item = ctx["payloads"][step - 1]
            return {
                "type": "sign_payload",
                "digest": sign_payload_digest(item["domain"], item["payload"]),
                "domain": item["domain"],
                "context": {"payload": item["payload"], "human": item["human"]},
            }
        if step > row.step_total and recovering(ctx):
            proof = proof_item(ctx, step, row.step_total)
            return {
                "type": "sign_tx",
                "digest": proof.sighash,
                "domain": SIGN_TX_DOMAIN,
                "context": proof_context(self.ark.spend_of(db, row)["ark_txid"], proof),
                "step_total": row.step_total + proof_steps(ctx),
            }
        item = self.ark.step_item(db, row, step)
        return {
            "type": "sign_tx",
            "digest": item.sighash,
            "domain": SIGN_TX_DOMAIN,
            "context": self.ark.sign_tx_context(row, item),
        }

    # ------------------------------------------------------------------ responses

    def record_response(
        self,
        db: Session,
        event: Event,
        response: SigningResponse,
        step: int | None,
        scheme: str,
        now: float,
    ) -> dict[str, Any] | None:
        """Check a 31512 against its session's current step and record it (one transaction).

        Returns what happened for :meth:`after_response`: ``{"kind": "ignored", "reason"}``
        for a response that must not touch the session (PROTOCOL.md §3: not the author's,
        not for the current step, or for a session that is over), or None for one recorded
        before a restart.
        """
        row = lock_session(db, response.session_id)
        if row is None or row.state in FINAL:
            return _ignored("closed_session")
        if event.pubkey != row.author:
            return {**_ignored("not_author"), "author": row.author}
        # A session has a challenge per signature it needs: one read answers the checks
        # below and what submitting or finalizing will need.
        challenges = db.scalars(sa.select(ChallengeRow).where(ChallengeRow.session_id == row.id))
        by_step = {c.step_index: c for c in challenges}
        if any(c.response_event_id == event.id for c in by_step.values()):
            return None  # recorded before a restart
        state = SessionState(row.state)
        current = by_step.get(row.step_index) if state in WAITING else None
        if current is None or current.signature is not None or row.context.get("phase"):
            return _ignored("not_current")  # e.g. a resend after a restart
        if step is not None and step != row.step_index:
            return _ignored("not_current")
        problem = None
        if response.payload_ref not in (None, current.payload_ref):
            problem = "payload_ref does not match the current challenge"
        elif response.algo != "BIP340" or response.type != current.type:
            problem = "the response's algo or type does not match the challenge"
        elif response.pubkey not in (None, row.author):
            problem = "the response names another pubkey"
        elif not _valid_signature(row.author, current.payload_to_sign, response.signature):
            problem = "invalid BIP340 signature over payload_to_sign"
        if problem is not None:
            if is_submitted(row):
                log.info("session %s step %d: %s; asked again", row.id, row.step_index, problem)
                return self.submitted.challenged_again(db, row, current, now)
            transitions = self.fail_in(db, row, ErrorCode.INVALID_SIGNING_RESPONSE, problem, now)
            return {"kind": "failed", "session_id": row.id, "transitions": transitions}
        current.signature = response.signature.lower()
        current.response_event_id = event.id
        current.answered_at = int(now)
        row.scheme = scheme  # answer in the scheme the wallet last used
        self.engine.lease_ok(row, now, steal=True)
        signed = {step: c.signature for step, c in by_step.items() if c.signature is not None}
        return self.after_signature(db, row, now, signed)

    def after_signature(
        self,
        db: Session,
        row: CeremonySession,
        now: float,
        signed: dict[int, str] | None = None,
    ) -> dict[str, Any]:
        """The current step is signed: send the next challenge or close the round.
        ``signed``: the session's signatures by step, when the caller has them at hand."""
        step, total = row.step_index, row.step_total
        if step > total:
            return self._proof_signed(db, row, now, signed)
        round_end = total if "payloads" in row.context else self.ark.round_end(row)
        if step < round_end:
            return self._next_step(db, row, now)
        if "payloads" in row.context or step == total:
            t = move(db, row, SessionState.SIGNATURES_COLLECTED, now=now, step_expires_at=None)
            return {
                "kind": "drive",
                "session_id": row.id,
                "transitions": [t],
                "held": self.hand_over(db, row, now, signed=signed),
            }
        ready = self.ark.ark_round_done(db, row, now)
        return {
            "kind": "drive" if ready else "wait",
            "session_id": row.id,
            "transitions": [],
            "drive": ready,
            "held": self.hand_over(db, row, now, signed=signed) if ready == [row.id] else None,
        }

    def _next_step(self, db: Session, row: CeremonySession, now: float) -> dict[str, Any]:
        """Queue the challenge for the step after the current one."""
        event = self.emit_challenge(db, row, row.step_index + 1, now)
        enqueue(db, event, now=now)
        row.updated_at = int(now)
        return {
            "kind": "next",
            "session_id": row.id,
            "event": event.id,
            "transitions": [],
            "deadline": float(row.step_expires_at or row.expires_at),
        }

    def _proof_signed(
        self, db: Session, row: CeremonySession, now: float, signed: dict[int, str] | None
    ) -> dict[str, Any]:
        """A step of an ownership proof (``recover``) is signed: the next one, or with
        all of them GetPendingTx (the leader submits again, which recovers)."""
        if row.step_index < row.step_total + proof_steps(row.context):
            return self._next_step(db, row, now)
        row.context = {**row.context, "phase": "submit"}
        row.step_expires_at = None
        row.updated_at = int(now)
        return {
            "kind": "drive",
            "session_id": row.id,
            "transitions": [],
            "held": self.hand_over(db, row, now, signed=signed),
        }

    async def after_response(self, outcome: dict[str, Any], turn: int | None = None) -> None:
        """After :meth:`record_response` committed; ``turn``: the one it was recorded in."""
        engine = self.engine
        engine.transitioned(outcome["transitions"])
        if outcome["kind"] == "failed":
            return
        if outcome["kind"] == "next":
            engine.deadlines.add(outcome["session_id"], outcome["deadline"])
            return
        held = outcome.get("held")
        for session_id in outcome.get("drive") or [outcome["session_id"]]:
            if held is not None and session_id == held["id"]:
                engine.spawn(self.drive, session_id, held, turn)
            else:
                engine.spawn(self.drive, session_id)

    # ------------------------------------------------------------------ failing

    def fail_in(
        self,
        db: Session,
        row: CeremonySession,
        code: ErrorCode,
        message: str,
        now: float,
        *,
        state: SessionState = SessionState.FAILED,
    ) -> list[Transition]:
        """End ``row`` with one 31341 (in the caller's transaction); legs of its batch
        that are still open end with 3005."""
        transitions = [self._end(db, row, code, message, now, state)]
        if row.batch_id is not None:
            batch = db.get(Batch, row.batch_id)
            if batch is not None and batch.state not in FINAL:
                batch.state, batch.updated_at = "failed", int(now)
            for leg in legs_of(db, row.batch_id):
                if leg.id != row.id and leg.state not in FINAL:
                    transitions.append(
                        self._end(
                            db,
                            leg,
                            ErrorCode.BATCH_COUNTERPARTY_FAILED,
                            f"another leg of batch {row.batch_id} failed ({int(code)})",
                            now,
                            SessionState.FAILED,
                        )
                    )
        return transitions

    def _end(
        self,
        db: Session,
        row: CeremonySession,
        code: ErrorCode,
        message: str,
        now: float,
        state: SessionState,
    ) -> Transition:
        notice = self.engine.messages.failure(
            code,
            author=row.author,
            ref_id=row.context.get("action_id") or row.id,
            answered=[row.intent_event_id],
            scheme=row.scheme,
            message=message,
            expires_at=row.expires_at,
        )
        return move(
            db, row, state, events=[notice], now=now, error_code=int(code), error_message=message
        )

    async def fail(
        self,
        session_id: str,
        code: ErrorCode,
        message: str,
        *,
        state: SessionState = SessionState.FAILED,
    ) -> None:
        def run(db: Session) -> list[Transition]:
            row = lock_session(db, session_id)
            if row is None or row.state in FINAL:
                return []
            return self.fail_in(db, row, code, message, time.time(), state=state)

        self.engine.transitioned(await self.engine.store.run(run))

    # ------------------------------------------------------------------ deadlines

    async def check_deadline(self, session_id: str) -> None:
        now = time.time()

        def run(db: Session) -> tuple[list[Transition], float | None, bool]:
            row = lock_session(db, session_id)
            if row is None or row.state in FINAL or row.lease_owner != self.engine.instance:
                return [], None, False
            state = SessionState(row.state)
            if state is SessionState.ARK_EXECUTED and row.context.get("phase") == "paying":
                return [], None, True
            if state is SessionState.SIGNATURES_COLLECTED and is_submitted(row):
                return [], None, True  # finalizing failed before: try again
            if row.context.get("phase") == "submit" and recovering(row.context):
                return [], None, True  # checking SubmitTx's fate failed before: again
            if state not in WAITING or row.context.get("phase"):
                return [], None, False
            if is_submitted(row):
                return self.submitted.at_deadline(db, row, now)
            if row.expires_at <= now:
                return (
                    self.fail_in(
                        db,
                        row,
                        ErrorCode.SIGNING_TIMEOUT,
                        "the signing session timed out",
                        now,
                        state=SessionState.EXPIRED,
                    ),
                    None,
                    False,
                )
            if row.step_expires_at is not None and row.step_expires_at <= now:
                return (
                    self.fail_in(
                        db,
                        row,
                        ErrorCode.SIGNING_TIMEOUT,
                        f"step {row.step_index} was not signed in time",
                        now,
                        state=SessionState.EXPIRED,
                    ),
                    None,
                    False,
                )
            return [], float(min(row.step_expires_at or row.expires_at, row.expires_at)), False

        transitions, again, track = await self.engine.store.run(run)
        self.engine.transitioned(transitions)
        if again is not None:
            self.engine.deadlines.add(session_id, again)
        if track:
            await self.drive(session_id)


def _ignored(reason: str) -> dict[str, Any]:
    return {"kind": "ignored", "reason": reason}


def _valid_signature(author: str, digest: str, signature: str) -> bool:
    try:
        sig = bytes.fromhex(signature)
        return len(sig) == 64 and bip340.schnorr_verify(
            bytes.fromhex(author), bytes.fromhex(digest), sig
        )
    except ValueError:
        return False
