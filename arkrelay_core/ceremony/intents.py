"""Intents (31510): intake, the replay and open-session checks, and opening the session.

Every check runs before any backend call; a refused intent gets one 31341. An accepted
one is recorded with its session in one transaction, then driven.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError, ProtocolViolation
from ..nostr import Event, first_tag_value
from ..protocol import SessionState
from ..protocol.intents import peek_id
from ..protocol.tags import session_id_for
from ..store.models import CeremonySession
from ..store.models import Intent as IntentRow
from .intake import AcceptedIntent, check_intent
from .records import FINAL, add_unique

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["IntentDesk"]


class IntentDesk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def handle(self, event: Event, *, recovered: bool = False) -> None:
        """Open the intent's session and drive it, or refuse the intent.

        An intent already recorded (its session was opened before a restart, or it is a
        leg of a batch) is dropped silently. Only a ``recovered`` event or one about to be
        refused is looked up first: any other is checked in the transaction opening it.
        """
        now = time.time()
        if recovered and await self.engine.store.run(_known, event.id):
            return  # handled before a restart

        ref = peek_id(event.content, "action_id") or first_tag_value(event, "d")
        try:
            accepted = check_intent(
                event,
                now=now,
                network=self.engine.network,
                resolve_asset=self.engine.assets.resolve,
                fees=self.engine.settings.fees,
                window=self.engine.config.gateway.event_window.seconds,
                params_types=self.engine.params_types,
            )
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
        if self.engine.rate_limited(event.pubkey, now):
            await self._refuse(event, ErrorCode.RATE_LIMITED, "too many requests", ref)
            return
        try:
            opened = await self.engine.store.run(self._open, accepted, now)
        except ProtocolViolation as exc:
            await self._refuse(event, exc.code, str(exc), ref)
            return
        if opened is None:
            return  # handled before a restart
        session_id, held = opened
        self.engine.notify(self.engine.hook.arkrelay_intent_received, intent=accepted.intent)
        # Nobody else knows the session yet: what the transaction left is current.
        turn = self.engine.take_turn(session_id)
        await self.engine.flows.drive(session_id, held, turn)

    async def _refuse(self, event: Event, code: ErrorCode, message: str, ref: str | None) -> None:
        if not await self.engine.store.run(_known, event.id):
            await self.engine.refuse(event, code, message, ref_id=ref)

    def _open(
        self, db: Session, accepted: AcceptedIntent, now: float
    ) -> tuple[str, dict[str, Any] | None] | None:
        """Open the session and hand it over; None if the intent was recorded before."""
        if _known(db, accepted.event.id):
            return None
        row = self._open_row(db, accepted, now)
        held = self.engine.flows.hand_over(db, row, now)
        if held is not None:
            held["intent"] = {"type": row.intent.type, "params": row.intent.params}
        return row.id, held

    def open_session(
        self, db: Session, accepted: AcceptedIntent, now: float, batch_id: str | None = None
    ) -> str:
        """Record the intent and open its session (in the caller's transaction); 1008 when
        the author has too many open sessions, 1004 when the action_id was used before."""
        return self._open_row(db, accepted, now, batch_id).id

    def _open_row(
        self, db: Session, accepted: AcceptedIntent, now: float, batch_id: str | None = None
    ) -> CeremonySession:
        event, intent = accepted.event, accepted.intent
        open_count = db.scalar(
            sa.select(sa.func.count()).where(
                CeremonySession.author == event.pubkey,
                CeremonySession.state.not_in(FINAL),
            )
        )
        if open_count >= self.engine.settings.max_open_sessions:
            raise ProtocolViolation(
                f"{open_count} sessions already open for this key", code=ErrorCode.RATE_LIMITED
            )
        session_id = session_id_for(event.id)
        expires_at = int(min(intent.expires_at, now + self.engine.settings.session_timeout.seconds))
        intent_row = IntentRow(
            event_id=event.id,
            author=event.pubkey,
            action_id=intent.action_id,
            type=accepted.action_type,
            params=msgspec.to_builtins(accepted.params),
            raw_event=msgspec.to_builtins(event),
            network=intent.network,
            expires_at=intent.expires_at,
            received_at=int(now),
            batch_id=batch_id,
        )
        fee = accepted.fee
        row = CeremonySession(
            id=session_id,
            intent=intent_row,
            author=event.pubkey,
            type=accepted.action_type,
            state=str(SessionState.INTENT_RECEIVED),
            step_index=0,
            step_total=0,
            batch_id=batch_id,
            scheme=self.engine.scheme_of(event.pubkey),
            context={
                "action_id": intent.action_id,
                "asset_id": accepted.asset_id,
                "fee": msgspec.to_builtins(fee) if fee else None,
                "figures": _figures(accepted.params),
            },
            created_at=int(now),
            updated_at=int(now),
            expires_at=expires_at,
            lease_owner=self.engine.instance,
            lease_expires_at=int(now + self.engine.settings.lease_ttl.seconds),
        )
        replayed = ProtocolViolation(
            f"action_id {intent.action_id!r} was already used by this key",
            code=ErrorCode.REPLAYED_ACTION,
        )
        add_unique(db, row, replayed)
        return row


def _known(db: Session, event_id: str) -> bool:
    return db.get(IntentRow, event_id) is not None


def _figures(params: object) -> dict[str, object]:
    """The intent's amount and recipient, repeated in each challenge for the wallet's check."""
    amount = getattr(params, "amount", None)
    if amount is None and hasattr(params, "split_amounts"):
        amount = sum(params.split_amounts)
    return {"amount": amount or 0, "recipient_pubkey": getattr(params, "recipient_pubkey", None)}
