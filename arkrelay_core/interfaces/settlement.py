"""Settlement strategies: commit the gateway's L2 history to L1 and announce it (31342)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import trio

from ..protocol import L1Commitment
from .ark import ArkBackend, ArkEvent
from .lightning import LightningBackend

__all__ = ["SettlementHost", "SettlementStrategy"]


class SettlementHost(Protocol):
    """What the gateway offers a settlement strategy while it runs."""

    ark: ArkBackend
    lightning: LightningBackend | None

    async def l2_txids_between(self, start: int, end: int) -> Sequence[str]:
        """Ark txids the gateway finalized in [start, end), in finalization order."""
        ...

    async def wait_leadership(self) -> None:
        """Return once this instance is the one that settles (advisory lock on PostgreSQL)."""
        ...

    async def publish_commitment(self, settlement_id: str, commitment: L1Commitment) -> None:
        """Queue the 31342 in the durable outbox."""
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
    ) -> None: ...

    async def on_ark_event(self, event: ArkEvent) -> None:
        """Called for every item of the Ark backend's feed (commitment txs included)."""
        ...

    async def settle_now(self) -> str | None:
        """Close the current period now (admin trigger); the settlement id, or None if empty."""
        ...

    def statistics(self) -> Mapping[str, Any]: ...
