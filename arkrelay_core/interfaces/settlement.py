"""Settlement strategies: commit the gateway's L2 history to L1 and announce it (31342).

The core runs a strategy only on the instance that holds settlement leadership (the
PostgreSQL advisory lock; with SQLite, the single instance) and cancels it when that
instance loses the lock. Everything a strategy must remember lives in settlement rows the
host keeps, so the next leader resumes each settlement from its state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec
import trio

from .ark import ArkBackend
from .lightning import LightningBackend

__all__ = ["SettlementHost", "SettlementRecord", "SettlementState", "SettlementStrategy"]

SettlementState = Literal[
    "collecting", "committed", "confirming", "confirmed", "published", "failed"
]


class SettlementRecord(msgspec.Struct, frozen=True):
    """One settlement as stored. ``context`` is the strategy's own resumable data."""

    id: str
    strategy: str
    state: SettlementState
    period_start: int
    period_end: int
    merkle_root: str | None
    l2_tx_count: int
    l1_txid: str | None
    block_height: int | None
    confirmations: int
    context: dict[str, Any]
    #: Each state change: ``{"state", "at", "note"}``.
    history: list[dict[str, Any]]
    created_at: int
    updated_at: int


class SettlementHost(Protocol):
    """What the gateway offers a running settlement strategy."""

    ark: ArkBackend | None
    lightning: LightningBackend | None

    async def uncommitted_l2_txs(self, before: int) -> list[tuple[str, int]]:
        """(ark txid, finalized at) of the transactions this gateway finalized before
        ``before`` (unix seconds) that no settlement holds yet, oldest first."""
        ...

    async def known_l2_txids(self, candidates: Sequence[str]) -> list[str]:
        """The subset of ``candidates`` this gateway finalized and no settlement holds yet."""
        ...

    async def open_settlement(
        self,
        settlement_id: str,
        *,
        strategy: str,
        period_start: int,
        period_end: int,
        ark_txids: Sequence[str],
        context: Mapping[str, Any] | None = None,
    ) -> SettlementRecord:
        """Record a settlement in ``collecting`` with its leaves and merkle root (one
        transaction). Returns the existing row unchanged if ``settlement_id`` exists."""
        ...

    async def settlement(self, settlement_id: str) -> SettlementRecord | None: ...

    async def unfinished(self, strategy: str) -> list[SettlementRecord]:
        """Settlements of ``strategy`` not yet published or failed, oldest period first."""
        ...

    async def last_period_end(self, strategy: str) -> int | None:
        """The end of the latest period ``strategy`` recorded, if any."""
        ...

    async def advance(
        self,
        settlement_id: str,
        state: SettlementState,
        *,
        note: str = "",
        l1_txid: str | None = None,
        block_height: int | None = None,
        confirmations: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> SettlementRecord:
        """Move a settlement to ``state`` (or update it in place when ``state`` is its
        current one), appending to its history; given fields are overwritten and
        ``context`` is merged into the stored one."""
        ...

    async def publish(self, settlement_id: str) -> SettlementRecord:
        """Queue the 31342 of a ``confirmed`` settlement in the outbox and mark it
        ``published``, in one transaction. Publishing twice is refused."""
        ...


@runtime_checkable
class SettlementStrategy(Protocol):
    """Implemented by arkrelay-settlement's strategies (``ark-batches``, ``anchor``)."""

    features: frozenset[str]

    async def serve(
        self,
        host: SettlementHost,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Settle until cancelled; started only while this instance holds leadership."""
        ...

    async def settle_now(self) -> str | None:
        """Close the current period now (admin trigger); the settlement id, or None if
        there was nothing to commit. Raises RuntimeError while not serving."""
        ...

    def statistics(self) -> Mapping[str, Any]:
        """Counters for metrics: at least ``commit_failures`` and ``fee_bumps``."""
        ...
