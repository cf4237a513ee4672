"""Per-relay counters and state, read by ``RelayPoolTransport.statistics()``."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

__all__ = ["AuthState", "RelayStats", "State"]

State = Literal["connecting", "connected", "backoff"]
#: none: the relay never asked; challenged: asked, not answered (``auth = false``);
#: answered: our kind 22242 event went out for the current challenge.
AuthState = Literal["none", "challenged", "answered"]


@dataclasses.dataclass
class RelayStats:
    state: State = "connecting"
    #: The current subscription reached EOSE: stored events are in, new ones flow live.
    live: bool = False
    auth: AuthState = "none"
    last_error: str | None = None
    #: Wall-clock time (Unix seconds) the current connection opened.
    connected_since: float | None = None
    connects: int = 0
    #: Verified events addressed to us, before the pool's cross-relay dedup.
    events_in: int = 0
    #: Events that failed the gate (size, shape, id, signature).
    events_invalid: int = 0
    #: Valid events of another kind or for another key (a relay ignoring our filter).
    events_ignored: int = 0
    #: Frames that were not a relay message we understand.
    frames_invalid: int = 0
    #: EVENT frames sent by publish (retries included).
    events_out: int = 0
    notices: int = 0
    #: REQs sent: the first one per connection and every resubscription.
    subscriptions: int = 0
    subscriptions_closed: int = 0
    publish_latency_last_ms: float | None = None
    _latency_total_ms: float = 0.0
    _latency_count: int = 0

    def record_latency(self, seconds: float) -> None:
        milliseconds = seconds * 1000.0
        self.publish_latency_last_ms = milliseconds
        self._latency_total_ms += milliseconds
        self._latency_count += 1

    def snapshot(self) -> dict[str, Any]:
        average = self._latency_total_ms / self._latency_count if self._latency_count else None
        return {
            "state": self.state,
            "live": self.live,
            "auth": self.auth,
            "last_error": self.last_error,
            "connected_since": self.connected_since,
            "connects": self.connects,
            "events_in": self.events_in,
            "events_invalid": self.events_invalid,
            "events_ignored": self.events_ignored,
            "frames_invalid": self.frames_invalid,
            "events_out": self.events_out,
            "notices": self.notices,
            "subscriptions": self.subscriptions,
            "subscriptions_closed": self.subscriptions_closed,
            "publish_latency_ms": {"last": self.publish_latency_last_ms, "avg": average},
        }
