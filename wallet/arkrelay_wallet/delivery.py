"""What a wallet makes of the relay's ``OK`` to each event it publishes (NIP-01), and how
long it waits before sending an event again.

``OK true`` means the relay holds the event, whatever the reason says; so does an
``OK false`` starting ``duplicate:``. ``rate-limited:`` and ``error:`` say "not now",
like an answer that never comes or a connection lost before it: the wallet sends the
same event again, later. Every other refusal (``invalid:``, ``blocked:``, ``pow:``,
``restricted:``, ``auth-required:``, no prefix at all) is final: the same bytes would
be refused again, so the caller hears the relay's reason instead.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Callable

import trio

__all__ = [
    "RETRY_PREFIXES",
    "Backoff",
    "Pacer",
    "Verdict",
    "judge",
    "reason_prefix",
]

#: Refusals that are about the moment, not the event.
RETRY_PREFIXES = frozenset({"rate-limited", "error"})


class Verdict(enum.Enum):
    #: The relay holds the event.
    PUBLISHED = "published"
    #: Send it again after a pause.
    RETRY = "retry"
    #: The relay will not take it; the caller must hear why.
    REFUSED = "refused"


def reason_prefix(reason: str) -> str:
    """The machine-readable word before the first colon, or "" when there is none."""
    head, sep, _ = reason.partition(":")
    return head.strip() if sep else ""


def judge(accepted: bool, reason: str) -> Verdict:
    if accepted:
        return Verdict.PUBLISHED
    prefix = reason_prefix(reason)
    if prefix == "duplicate":
        return Verdict.PUBLISHED
    if prefix in RETRY_PREFIXES:
        return Verdict.RETRY
    return Verdict.REFUSED


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Capped exponential pauses with jitter between attempts at one event.

    The pause before attempt ``n + 1`` (after ``n`` failed ones, ``n >= 1``) lies in
    ``[ceiling / 2, ceiling]`` with ``ceiling = min(maximum, initial * 2 ** (n - 1))``:
    half of it is fixed so a refused burst cannot come back as a burst, half is random
    so wallets refused together do not retry together.
    """

    initial: float = 0.25
    maximum: float = 4.0

    def ceiling(self, failures: int) -> float:
        if failures < 1:
            raise ValueError("a pause follows at least one failed attempt")
        # Past 2 ** 32 the cap has long been reached; the bound keeps the float finite.
        return min(self.maximum, self.initial * 2.0 ** min(failures - 1, 32))

    def pause(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        ceiling = self.ceiling(failures)
        return ceiling / 2 + rand() * ceiling / 2


class Pacer:
    """Spaces sends at least ``interval`` apart, in the order they asked: what goes out
    again after a reconnect leaves one at a time, not as one burst the relay's per-pubkey
    rate limit would cut into."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = -float("inf")

    async def turn(self) -> None:
        now = trio.current_time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        await trio.sleep_until(slot)
