"""A circuit breaker on trio's clock (DESIGN.md §4: 5 failures -> open for 60 s).

Closed: calls go through; consecutive failures are counted. Open: calls are refused with
CircuitOpen (5005) without touching the daemon. After ``reset_after`` seconds one trial call
is let through (half-open): success closes the breaker, failure opens it again.
"""

from __future__ import annotations

import logging
from typing import Literal

import trio

from ..errors import CircuitOpen

__all__ = ["CircuitBreaker"]

log = logging.getLogger(__name__)

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, name: str, *, failures: int = 5, reset_after: float = 60.0) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.name = name
        self.failure_threshold = failures
        self.reset_after = reset_after
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self.times_opened = 0

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if trio.current_time() - self._opened_at >= self.reset_after:
            return "half_open"
        return "open"

    def check(self) -> None:
        """Raise CircuitOpen unless a call may go through now (claims the half-open trial)."""
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and not self._trial_running:
            self._trial_running = True
            return
        assert self._opened_at is not None
        retry_in = max(0.0, self._opened_at + self.reset_after - trio.current_time())
        raise CircuitOpen(
            f"{self.name}: circuit open after repeated failures; retry in {retry_in:.0f}s"
        )

    def record_success(self) -> None:
        """The daemon answered (a refusal is an answer too)."""
        if self._opened_at is not None:
            log.info("%s: circuit closed", self.name)
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        """A call failed for a reason that says the daemon is unwell (not a refusal)."""
        self._failures += 1
        if self._trial_running or (
            self._opened_at is None and self._failures >= self.failure_threshold
        ):
            self.times_opened += 1
            self._opened_at = trio.current_time()
            self._trial_running = False
            log.warning(
                "%s: circuit open for %.0fs after %d failures",
                self.name,
                self.reset_after,
                self._failures,
            )

    def statistics(self) -> dict[str, object]:
        return {
            "state": self.state,
            "consecutive_failures": self._failures,
            "times_opened": self.times_opened,
        }
