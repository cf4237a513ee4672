"""Driving sessions: prepare, challenge, collect, submit, finalize, complete or fail.

``drive`` is the one entry point: it reads the session and does the next piece of work
its state calls for, committing each result with the events it causes, until the
session waits for its wallet or is final. Starting, resuming after a restart and taking
over a dead instance's session are all just ``drive``.

A transaction that moves a session also hands over the session as it leaves it (lease
checked and held, as a claim would, see ``steps.hand_over``): ``drive`` goes on from that
instead of reading the session again, unless another task has had a turn at the session
in between.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError
from ..protocol import SessionState
from .ark import ArkSteps
from .batches import prepare_batch
from .finalize import Finalizer
from .land import LandFlows
from .payloads import PayloadSteps
from .ports import Ports
from .proofs import recovering
from .records import FINAL, WAITING, Transition, lock_session
from .state import Held, Snap, snapshot
from .steps import fail_in, lease_ok
from .submit import Submitter
from .submitted import Submitted, is_submitted

__all__ = ["SessionDriver"]

log = logging.getLogger(__name__)


class SessionDriver:
    """Implements ``ports.Driver``; owns the flows a session's state dispatches to."""

    def __init__(self, ports: Ports) -> None:
        self.ports = ports
        self.ark = ArkSteps(ports)
        self.submitter = Submitter(ports, self)
        self.finalizer = Finalizer(ports)
        self.submitted = Submitted(ports)
        self.payloads = PayloadSteps(ports)
        self.land = LandFlows(ports)

    async def drive(self, session_id: str, held: Held = None, turn: int | None = None) -> None:
        """Drive ``session_id`` until it waits or ends. ``held``: the session as the
        transaction of ``turn`` left it (see ``steps.hand_over``), to start from."""
        turns = self.ports.turns
        async with turns.lock(session_id):
            if turn is None or not turns.still(session_id, turn):
                held = None  # someone else had a turn at the session: read it again
            turns.take(session_id)
            while True:
                snap = held or await self.ports.run(self._claim, session_id, time.time())
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
                held = more if isinstance(more, Snap) else None
        turns.forget(session_id)

    def _claim(self, db: Session, session_id: str, now: float) -> Snap | None:
        row = lock_session(db, session_id)
        if row is None or row.state in FINAL or not lease_ok(self.ports, row, now):
            return None
        return snapshot(row)

    async def _advance(self, snap: Snap) -> bool | Snap:
        """Do the next piece of work; False when the session now waits (or ended); else
        the session as the work left it, or True to read it again."""
        ports = self.ports
        state = SessionState(snap.state)
        ctx = snap.context
        plugin = snap.type in ports.intent_types
        if state is SessionState.INTENT_RECEIVED:
            if snap.batch_id is not None:
                await prepare_batch(ports, self, self.ark, snap)  # the first leg does all
                return False
            if plugin:
                await self.payloads.prepare(snap)
                return True
            if snap.type == "lightning:land":
                await self.land.check_land(snap)
            return await self.ark.prepare(snap) or True
        if state in WAITING:
            if ctx.get("phase") == "submit":
                return await self.submitter.submit(snap) or True
            ports.deadlines.add(snap.id, snap.step_expires_at or snap.expires_at)
            ports.deadlines.add(snap.id, snap.expires_at)
            return False
        if state is SessionState.SIGNATURES_COLLECTED:
            if plugin:
                await self.payloads.execute(snap)
                return True
            return await self.finalizer.finalize(snap) or True
        if state is SessionState.ARK_EXECUTED:
            if snap.type == "lightning:land":
                return await self.land.pay(snap)
            return await self.finalizer.complete(snap) or True
        return False

    async def fail(
        self,
        session_id: str,
        code: ErrorCode,
        message: str,
        *,
        state: SessionState = SessionState.FAILED,
    ) -> None:
        ports = self.ports

        def run(db: Session) -> list[Transition]:
            row = lock_session(db, session_id)
            if row is None or row.state in FINAL:
                return []
            return fail_in(ports, db, row, code, message, time.time(), state=state)

        ports.transitioned(await ports.run(run))

    async def check_deadline(self, session_id: str) -> None:
        """A deadline of ``session_id`` fell due (``Deadlines``): look at it again."""
        ports = self.ports
        now = time.time()

        def run(db: Session) -> tuple[list[Transition], float | None, bool]:
            row = lock_session(db, session_id)
            if row is None or row.state in FINAL or row.lease_owner != ports.instance:
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
                message = "the signing session timed out"
            elif row.step_expires_at is not None and row.step_expires_at <= now:
                message = f"step {row.step_index} was not signed in time"
            else:
                return [], float(min(row.step_expires_at or row.expires_at, row.expires_at)), False
            code = ErrorCode.SIGNING_TIMEOUT
            out = fail_in(ports, db, row, code, message, now, state=SessionState.EXPIRED)
            return out, None, False

        transitions, again, track = await ports.run(run)
        ports.transitioned(transitions)
        if again is not None:
            ports.deadlines.add(session_id, again)
        if track:
            await self.drive(session_id)
