"""Opening a session: an intent checked against the gateway's rules, then recorded with
its session in the caller's transaction (a lone intent's, or every leg of a batch)."""

from __future__ import annotations

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ProtocolViolation
from ..nostr import Event
from ..protocol import SessionState
from ..protocol.tags import session_id_for
from ..store.models import CeremonySession
from ..store.models import Intent as IntentRow
from .intake import AcceptedIntent, check_intent
from .ports import Ports
from .records import FINAL, add_unique

__all__ = ["check", "open_row"]


def check(ports: Ports, event: Event, now: float) -> AcceptedIntent:
    """``check_intent`` with this gateway's network, assets, fees and action types."""
    return check_intent(
        event,
        now=now,
        network=ports.network,
        resolve_asset=ports.assets.resolve,
        fees=ports.settings.fees,
        window=ports.event_window,
        params_types=ports.params_types,
    )


def open_row(
    ports: Ports, db: Session, accepted: AcceptedIntent, now: float, batch_id: str | None = None
) -> CeremonySession:
    """Record the intent and open its session (in the caller's transaction); 1008 when
    the author has too many open sessions, 1004 when the action_id was used before."""
    event, intent = accepted.event, accepted.intent
    open_count = db.scalar(
        sa.select(sa.func.count()).where(
            CeremonySession.author == event.pubkey,
            CeremonySession.state.not_in(FINAL),
        )
    )
    if open_count >= ports.settings.max_open_sessions:
        raise ProtocolViolation(
            f"{open_count} sessions already open for this key", code=ErrorCode.RATE_LIMITED
        )
    session_id = session_id_for(event.id)
    expires_at = int(min(intent.expires_at, now + ports.settings.session_timeout.seconds))
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
        scheme=ports.peers.scheme_of(event.pubkey),
        context={
            "action_id": intent.action_id,
            "asset_id": accepted.asset_id,
            "fee": msgspec.to_builtins(fee) if fee else None,
            "figures": _figures(accepted.params),
        },
        created_at=int(now),
        updated_at=int(now),
        expires_at=expires_at,
        lease_owner=ports.instance,
        lease_expires_at=int(now + ports.settings.lease_ttl.seconds),
    )
    replayed = ProtocolViolation(
        f"action_id {intent.action_id!r} was already used by this key",
        code=ErrorCode.REPLAYED_ACTION,
    )
    add_unique(db, row, replayed)
    return row


def _figures(params: object) -> dict[str, object]:
    """The intent's amount and recipient, repeated in each challenge for the wallet's check."""
    amount = getattr(params, "amount", None)
    if amount is None and hasattr(params, "split_amounts"):
        amount = sum(params.split_amounts)
    return {"amount": amount or 0, "recipient_pubkey": getattr(params, "recipient_pubkey", None)}
