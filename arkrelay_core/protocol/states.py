"""The signing-session state machine (PROTOCOL.md §3)."""

from __future__ import annotations

import enum

__all__ = ["FINAL_STATES", "SessionState", "can_transition", "parse_session_state"]


class SessionState(enum.StrEnum):
    INTENT_RECEIVED = "intent_received"
    ARK_TX_PREPARED = "ark_tx_prepared"
    CHECKPOINT_TXS_PREPARED = "checkpoint_txs_prepared"
    SIGNATURES_COLLECTED = "signatures_collected"
    ARK_EXECUTED = "ark_executed"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {SessionState.COMPLETED, SessionState.FAILED, SessionState.EXPIRED, SessionState.CANCELLED}
)

_HAPPY_PATH = (
    SessionState.INTENT_RECEIVED,
    SessionState.ARK_TX_PREPARED,
    SessionState.CHECKPOINT_TXS_PREPARED,
    SessionState.SIGNATURES_COLLECTED,
    SessionState.ARK_EXECUTED,
    SessionState.COMPLETED,
)

# Names older clients and stored rows may still carry; accepted when reading only.
_ALIASES = {
    "pending": SessionState.INTENT_RECEIVED,
    "active": SessionState.ARK_TX_PREPARED,
    "awaiting_signature": SessionState.ARK_TX_PREPARED,
    "response_received": SessionState.SIGNATURES_COLLECTED,
}


def parse_session_state(name: str) -> SessionState:
    """Read a state name, accepting the legacy aliases. Raises ValueError otherwise."""
    try:
        return SessionState(name)
    except ValueError:
        if name in _ALIASES:
            return _ALIASES[name]
        raise ValueError(f"unknown session state {name!r}") from None


def can_transition(old: SessionState, new: SessionState) -> bool:
    """Whether ``old -> new`` is a legal move.

    The happy path only moves forward, and may skip steps a flow does not need (a
    ``sign_payload`` session has no checkpoint round). One move goes back: a checkpoint
    signature the Ark server rejects at FinalizeTx sends the session back to collecting
    checkpoint signatures (PROTOCOL.md §3: after SubmitTx it is challenged again, never
    failed). Any non-final state may end in failed / expired / cancelled. Final states
    never move.
    """
    if old.is_final:
        return False
    if new in (SessionState.FAILED, SessionState.EXPIRED, SessionState.CANCELLED):
        return True
    if (old, new) == (SessionState.SIGNATURES_COLLECTED, SessionState.CHECKPOINT_TXS_PREPARED):
        return True
    return _HAPPY_PATH.index(new) > _HAPPY_PATH.index(old)
