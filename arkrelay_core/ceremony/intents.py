"""Intents (31510): intake, the replay and open-session checks, and opening the session.

Every check runs before any backend call; a refused intent gets one 31341. An accepted
one is recorded with its session in one transaction, then driven.
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError, ProtocolViolation
from ..nostr import Event, first_tag_value
from ..protocol.intents import peek_id
from ..store.models import Intent as IntentRow
from .intake import AcceptedIntent
from .opening import check, open_row
from .ports import Driver, Ports
from .state import Held, IntentRef
from .steps import hand_over

__all__ = ["IntentDesk"]


class IntentDesk:
    def __init__(self, ports: Ports, driver: Driver) -> None:
        self.ports = ports
        self.driver = driver

    async def handle(self, event: Event, *, recovered: bool = False) -> None:
        """Open the intent's session and drive it, or refuse the intent.

        An intent already recorded (its session was opened before a restart, or it is a
        leg of a batch) is dropped silently. Only a ``recovered`` event or one about to be
        refused is looked up first: any other is checked in the transaction opening it.
        """
        now = time.time()
        if recovered and await self.ports.run(_known, event.id):
            return  # handled before a restart

        ref = peek_id(event.content, "action_id") or first_tag_value(event, "d")
        try:
            accepted = check(self.ports, event, now)
        except ArkRelayError as exc:
            await self._refuse(event, exc.code, str(exc), ref)
            return
        if accepted.action_type == "ark:swap_leg":
            await self._refuse(
                event,
                ErrorCode.BATCH_INVALID,
                "ark:swap_leg is only valid inside a submit_batch request",
                ref,
            )
            return
        if self.ports.peers.rate_limited(event.pubkey, now):
            await self._refuse(event, ErrorCode.RATE_LIMITED, "too many requests", ref)
            return
        try:
            opened = await self.ports.run(self._open, accepted, now)
        except ProtocolViolation as exc:
            await self._refuse(event, exc.code, str(exc), ref)
            return
        if opened is None:
            return  # handled before a restart
        session_id, held = opened
        self.ports.notify(self.ports.hook.arkrelay_intent_received, intent=accepted.intent)
        # Nobody else knows the session yet: what the transaction left is current.
        turn = self.ports.turns.take(session_id)
        await self.driver.drive(session_id, held, turn)

    async def _refuse(self, event: Event, code: ErrorCode, message: str, ref: str | None) -> None:
        if not await self.ports.run(_known, event.id):
            await self.ports.peers.refuse(event, code, message, ref_id=ref)

    def _open(self, db: Session, accepted: AcceptedIntent, now: float) -> tuple[str, Held] | None:
        """Open the session and hand it over; None if the intent was recorded before."""
        if _known(db, accepted.event.id):
            return None
        row = open_row(self.ports, db, accepted, now)
        held = hand_over(self.ports, db, row, now)
        if held is not None:
            held.intent = IntentRef(row.intent.type, row.intent.params)
        return row.id, held


def _known(db: Session, event_id: str) -> bool:
    return db.get(IntentRow, event_id) is not None
