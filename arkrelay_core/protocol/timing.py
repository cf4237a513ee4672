"""Clock rules of the protocol (PROTOCOL.md §1 and §3)."""

from __future__ import annotations

__all__ = [
    "DEFAULT_EVENT_WINDOW",
    "FUTURE_SKEW",
    "SESSION_TIMEOUT",
    "STEP_TIMEOUT",
    "is_stale",
]

FUTURE_SKEW = 600
DEFAULT_EVENT_WINDOW = 3600
STEP_TIMEOUT = 120
SESSION_TIMEOUT = 15 * 60


def is_stale(created_at: int, now: float, window: float = DEFAULT_EVENT_WINDOW) -> bool:
    """Too far in the future (clock skew allowance 10 min) or older than ``window``."""
    return created_at > now + FUTURE_SKEW or created_at < now - window
