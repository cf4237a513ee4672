"""The `d`, `e`, `p` and NIP-40 `expiration` tag rules (PROTOCOL.md §1).

Every kind the gateway emits lies in the addressable range, where relays keep only the
newest event per (pubkey, kind, d). A `d` value that is unique per message is what keeps
one confirmation from silently replacing another.
"""

from __future__ import annotations

__all__ = [
    "EXPIRATION_GRACE",
    "batch_confirmation_d",
    "challenge_d",
    "confirmation_d",
    "expiration_tag",
    "failure_d",
    "l1_commitment_d",
    "lift_confirmation_d",
    "notification_d",
    "service_response_d",
    "session_id_for",
]

#: Messages that only matter for a while expire this long after their session/request.
EXPIRATION_GRACE = 3600


def session_id_for(intent_event_id: str) -> str:
    """`sess_` + the first 24 hex chars of the intent's event id."""
    return "sess_" + intent_event_id[:24]


def challenge_d(session_id: str, step_index: int) -> str:
    return f"{session_id}:{step_index}"


def confirmation_d(action_id: str) -> str:
    return action_id


def batch_confirmation_d(batch_id: str) -> str:
    return f"batch:{batch_id}"


def lift_confirmation_d(payment_hash: str) -> str:
    return f"lift:{payment_hash}"


def failure_d(ref_id: str) -> str:
    """`ref_id` is the intent's action_id, or the request id of a failed service request."""
    return f"fail:{ref_id}"


def service_response_d(request_event_id: str) -> str:
    return f"resp:{request_event_id}"


def notification_d(note_uuid: str) -> str:
    return f"note:{note_uuid}"


def l1_commitment_d(settlement_id: str) -> str:
    return f"l1:{settlement_id}"


def expiration_tag(expires_at: int) -> list[str]:
    """NIP-40 tag for a message tied to something that expires at ``expires_at``."""
    return ["expiration", str(int(expires_at) + EXPIRATION_GRACE)]
