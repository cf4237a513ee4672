"""Operator settings of the settlement strategies (``[settlement] plugin = "..."``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from arkrelay_core.config import Duration

__all__ = ["AnchorSettings", "ArkBatchesSettings"]

Rate = Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class AnchorSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Commit each period's merkle root in an OP_RETURN through the Lightning backend's
    on-chain wallet. Give the period as ``every`` (a duration, periods aligned to the Unix
    epoch) or ``cron`` (five fields, UTC); ``every = "1h"`` when neither is set."""

    every: Duration | None = None
    cron: str | None = None
    #: Confirmations before the 31342 is published.
    confirmations: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    sat_per_vbyte: Rate = 2
    #: Fee bumps double the rate up to this; past it the tx is only rebroadcast.
    max_sat_per_vbyte: Rate = 100
    #: Unconfirmed this long after broadcast: bump the fee (then twice as long each time).
    bump_after: Duration = Duration(600)
    #: Wait this long after a period ends before closing it, for ceremonies finishing.
    grace: Duration = Duration(30)
    #: How often confirmations are checked and a queued period retried.
    poll: Duration = Duration(30)

    def __post_init__(self) -> None:
        if self.every is not None and self.cron is not None:
            raise ValueError("set every or cron, not both")
        if self.every is not None and self.every.seconds < 1:
            raise ValueError("every must be at least 1s")
        if self.cron is not None:
            # Parsed here so a bad expression is a config error, not a failure at runtime.
            from .schedule import Schedule

            Schedule.cron_expression(self.cron)
        if self.max_sat_per_vbyte < self.sat_per_vbyte:
            raise ValueError("max_sat_per_vbyte is below sat_per_vbyte")


class ArkBatchesSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Announce each Ark commitment (batch) tx that settles L2 transactions of ours."""

    #: Commitment events buffered while a settlement is being recorded.
    buffer: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 64
