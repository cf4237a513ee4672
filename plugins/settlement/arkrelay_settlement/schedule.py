"""Period boundaries: every N seconds from the Unix epoch, or the fire times of a cron
expression (UTC)."""

from __future__ import annotations

import datetime as dt

import cronsim

__all__ = ["Schedule"]

_UTC = dt.UTC


class Schedule:
    def __init__(self, *, every: float | None = None, cron: str | None = None) -> None:
        if (every is None) == (cron is None):
            raise ValueError("a schedule needs exactly one of every or cron")
        self.every = every
        self.cron = cron
        if cron is not None:
            self.cron_expression(cron)

    @staticmethod
    def cron_expression(expression: str) -> None:
        """Raise ValueError naming the problem if ``expression`` is not valid cron."""
        try:
            cronsim.CronSim(expression, dt.datetime.now(_UTC))
        except cronsim.CronSimError as exc:
            raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None

    def __str__(self) -> str:
        return f"every {self.every:g}s" if self.every is not None else f"cron {self.cron!r}"

    def last_boundary(self, at: float) -> int:
        """The latest boundary at or before ``at``."""
        if self.every is not None:
            return int(at // self.every * self.every)
        assert self.cron is not None
        # cronsim's reverse walk starts strictly before the given time; a second later
        # includes ``at`` itself when it is a fire time.
        moment = dt.datetime.fromtimestamp(int(at) + 1, _UTC)
        return int(next(cronsim.CronSim(self.cron, moment, reverse=True)).timestamp())

    def next_boundary(self, at: float) -> int:
        """The first boundary strictly after ``at``."""
        if self.every is not None:
            return int((at // self.every + 1) * self.every)
        assert self.cron is not None
        moment = dt.datetime.fromtimestamp(int(at), _UTC)
        return int(next(cronsim.CronSim(self.cron, moment)).timestamp())
