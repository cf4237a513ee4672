"""Signing responses (31512): checked against the session's current step, recorded, and
the session moved on (the next challenge, or the round closed and the session driven).

Anyone can publish a 31512 naming any session (its `d` tag is public), so what is not the
author's answer to the current step is ignored, never answered (PROTOCOL.md §3).
"""

from __future__ import annotations

import collections
import logging
import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ProtocolViolation
from ..nostr import Event, bip340, first_tag_value
from ..outbox import enqueue
from ..protocol import SessionState, decode_content
from ..protocol.signing import SigningResponse
from ..store.models import CeremonySession
from ..store.models import Challenge as ChallengeRow
from .challenges import emit_challenge
from .ports import Driver, Ports
from .proofs import proof_steps
from .records import FINAL, WAITING, lock_session, move
from .spends import ark_round_done, round_end
from .state import Drive, Failed, Ignored, Next, Outcome
from .steps import fail_in, hand_over, lease_ok
from .submitted import Submitted, is_submitted

__all__ = ["IGNORED_PREFIX", "RESPONSE_IGNORED_REASONS", "Responses"]

log = logging.getLogger(__name__)

#: Sessions whose author is remembered (an LRU: the oldest are forgotten).
AUTHORS_KEPT = 100_000
#: ``stats`` key prefix of ignored 31512s, by reason (see ``RESPONSE_IGNORED_REASONS``).
IGNORED_PREFIX = "responses_ignored_"
#: Why a 31512 was ignored: it did not decrypt, did not decode, its `d` tag names another
#: session or no step, its session is unknown or over, it is not signed by the intent's
#: author, or it answers a step that is not the current one.
RESPONSE_IGNORED_REASONS = (
    "undecryptable",
    "malformed",
    "mismatched_d",
    "closed_session",
    "not_author",
    "not_current",
)


class Responses:
    def __init__(self, ports: Ports, driver: Driver, submitted: Submitted) -> None:
        self.ports = ports
        self.driver = driver
        self.submitted = submitted
        #: The author of each session a 31512 named lately (see :meth:`handle`).
        self._authors: collections.OrderedDict[str, str] = collections.OrderedDict()

    async def handle(self, event: Event) -> None:
        """A 31512. Anyone can publish one naming any session (its `d` tag is public), so
        what is not the author's answer to the current step is ignored, never answered
        (PROTOCOL.md §3)."""
        try:
            text, scheme = self.ports.peers.decrypt(event)
            response = decode_content(text, SigningResponse)
        except ProtocolViolation as exc:
            reason = "undecryptable" if exc.code is ErrorCode.CANNOT_DECRYPT else "malformed"
            self.ignore_response(event, reason)
            return
        step = None
        d = first_tag_value(event, "d")
        if d is not None:
            session_id, _, step_text = d.rpartition(":")
            if session_id != response.session_id or not step_text.isdigit():
                self.ignore_response(event, "mismatched_d")
                return
            step = int(step_text)
        author = self._authors.get(response.session_id)
        if author is not None and author != event.pubkey:
            # Known not to be the author's: spares the session its lock and a transaction.
            self.ignore_response(event, "not_author")
            return
        turns = self.ports.turns
        async with turns.lock(response.session_id):
            turn = turns.take(response.session_id)
            outcome = await self.ports.run(
                self.record_response, event, response, step, scheme, time.time()
            )
        if not isinstance(outcome, Ignored):
            self._remember_author(response.session_id, event.pubkey)
        if outcome is None:
            self.ports.stats["responses_dropped"] += 1
            return
        if isinstance(outcome, Ignored):
            if outcome.reason == "closed_session":
                turns.forget(response.session_id)  # any id can be named: keep none
            if outcome.author is not None:
                self._remember_author(response.session_id, outcome.author)
            elif outcome.reason == "not_current":
                self._remember_author(response.session_id, event.pubkey)
            self.ignore_response(event, outcome.reason)
            return
        await self.after_response(outcome, turn)

    def _remember_author(self, session_id: str, author: str) -> None:
        """A session's author never changes: remembered, a stranger's 31512 costs no lock."""
        self._authors[session_id] = author
        self._authors.move_to_end(session_id)
        if len(self._authors) > AUTHORS_KEPT:
            self._authors.popitem(last=False)

    def ignore_response(self, event: Event, reason: str) -> None:
        """Count and log a 31512 that must not touch any session."""
        self.ports.stats[f"{IGNORED_PREFIX}{reason}"] += 1
        log.info("ignored 31512 %s from %s: %s", event.id, event.pubkey, reason)

    def record_response(
        self,
        db: Session,
        event: Event,
        response: SigningResponse,
        step: int | None,
        scheme: str,
        now: float,
    ) -> Outcome | None:
        """Check a 31512 against its session's current step and record it (one transaction).

        Returns what happened for :meth:`after_response`: ``Ignored`` for a response that
        must not touch the session (PROTOCOL.md §3: not the author's, not for the current
        step, or for a session that is over), or None for one recorded before a restart.
        """
        row = lock_session(db, response.session_id)
        if row is None or row.state in FINAL:
            return Ignored("closed_session")
        if event.pubkey != row.author:
            return Ignored("not_author", row.author)
        # A session has a challenge per signature it needs: one read answers the checks
        # below and what submitting or finalizing will need.
        challenges = db.scalars(sa.select(ChallengeRow).where(ChallengeRow.session_id == row.id))
        by_step = {c.step_index: c for c in challenges}
        if any(c.response_event_id == event.id for c in by_step.values()):
            return None  # recorded before a restart
        state = SessionState(row.state)
        current = by_step.get(row.step_index) if state in WAITING else None
        if current is None or current.signature is not None or row.context.get("phase"):
            return Ignored("not_current")  # e.g. a resend after a restart
        if step is not None and step != row.step_index:
            return Ignored("not_current")
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
            transitions = fail_in(
                self.ports, db, row, ErrorCode.INVALID_SIGNING_RESPONSE, problem, now
            )
            return Failed(row.id, transitions)
        current.signature = response.signature.lower()
        current.response_event_id = event.id
        current.answered_at = int(now)
        row.scheme = scheme  # answer in the scheme the wallet last used
        lease_ok(self.ports, row, now, steal=True)
        signed = {step: c.signature for step, c in by_step.items() if c.signature is not None}
        return self.after_signature(db, row, now, signed)

    def after_signature(
        self,
        db: Session,
        row: CeremonySession,
        now: float,
        signed: dict[int, str] | None = None,
    ) -> Next | Drive:
        """The current step is signed: send the next challenge or close the round.
        ``signed``: the session's signatures by step, when the caller has them at hand."""
        step, total = row.step_index, row.step_total
        if step > total:
            return self._proof_signed(db, row, now, signed)
        end = total if "payloads" in row.context else round_end(row)
        if step < end:
            return self._next_step(db, row, now)
        if "payloads" in row.context or step == total:
            t = move(db, row, SessionState.SIGNATURES_COLLECTED, now=now, step_expires_at=None)
            return Drive([row.id], [t], hand_over(self.ports, db, row, now, signed=signed))
        ready = ark_round_done(db, row)
        if ready == [row.id]:
            return Drive(ready, [], hand_over(self.ports, db, row, now, signed=signed))
        # A leg whose batch still waits for other legs: driven read afresh, it notes its
        # deadlines; the leg that completes the round drives the leader.
        return Drive(ready or [row.id], [])

    def _next_step(self, db: Session, row: CeremonySession, now: float) -> Next:
        """Queue the challenge for the step after the current one."""
        event = emit_challenge(self.ports, db, row, row.step_index + 1, now)
        enqueue(db, event, now=now)
        row.updated_at = int(now)
        return Next(row.id, event.id, float(row.step_expires_at or row.expires_at))

    def _proof_signed(
        self, db: Session, row: CeremonySession, now: float, signed: dict[int, str] | None
    ) -> Next | Drive:
        """A step of an ownership proof (``recover``) is signed: the next one, or with
        all of them GetPendingTx (the leader submits again, which recovers)."""
        if row.step_index < row.step_total + proof_steps(row.context):
            return self._next_step(db, row, now)
        row.context = {**row.context, "phase": "submit"}
        row.step_expires_at = None
        row.updated_at = int(now)
        return Drive([row.id], [], hand_over(self.ports, db, row, now, signed=signed))

    async def after_response(self, outcome: Failed | Next | Drive, turn: int | None = None) -> None:
        """After :meth:`record_response` committed; ``turn``: the one it was recorded in."""
        ports = self.ports
        if isinstance(outcome, Next):
            ports.notify_outbox()
            ports.deadlines.add(outcome.session_id, outcome.deadline)
            return
        ports.transitioned(outcome.transitions)
        if isinstance(outcome, Failed):
            return
        held = outcome.held
        for session_id in outcome.sessions:
            if held is not None and session_id == held.id:
                ports.spawn(self.driver.drive, session_id, held, turn)
            else:
                ports.spawn(self.driver.drive, session_id)


def _valid_signature(author: str, digest: str, signature: str) -> bool:
    try:
        sig = bytes.fromhex(signature)
        return len(sig) == 64 and bip340.schnorr_verify(
            bytes.fromhex(author), bytes.fromhex(digest), sig
        )
    except ValueError:
        return False
