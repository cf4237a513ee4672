"""The gateway's side of settlement: the host a strategy runs in, and the loop that runs it
only while this instance leads."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from ..ceremony.db import Store
from ..identity import ServiceIdentity
from ..interfaces import (
    ArkBackend,
    LightningBackend,
    SettlementRecord,
    SettlementState,
    SettlementStrategy,
)
from . import rows
from .leader import Leadership

__all__ = ["GatewaySettlementHost", "run_settlement"]

log = logging.getLogger(__name__)

#: Pause before a strategy that crashed is started again; its rows say where to resume.
RESTART_DELAY = 5.0


class GatewaySettlementHost:
    def __init__(
        self,
        store: Store,
        identity: ServiceIdentity,
        *,
        ark: ArkBackend | None,
        lightning: LightningBackend | None,
        notify_outbox: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._identity = identity
        self.ark = ark
        self.lightning = lightning
        self._notify_outbox = notify_outbox
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    async def uncommitted_l2_txs(self, before: int) -> list[tuple[str, int]]:
        return await self._store.run(rows.uncommitted, before)

    async def known_l2_txids(self, candidates: Sequence[str]) -> list[str]:
        return await self._store.run(rows.known, list(candidates))

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
        return await self._store.run(
            functools.partial(
                rows.open_settlement,
                strategy=strategy,
                period_start=period_start,
                period_end=period_end,
                ark_txids=list(ark_txids),
                context=context,
                now=self._now(),
            ),
            settlement_id,
        )

    async def settlement(self, settlement_id: str) -> SettlementRecord | None:
        return await self._store.run(rows.get, settlement_id)

    async def unfinished(self, strategy: str) -> list[SettlementRecord]:
        return await self._store.run(rows.unfinished, strategy)

    async def last_period_end(self, strategy: str) -> int | None:
        return await self._store.run(rows.last_period_end, strategy)

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
        fields = {
            name: value
            for name, value in (
                ("l1_txid", l1_txid),
                ("block_height", block_height),
                ("confirmations", confirmations),
            )
            if value is not None
        }
        return await self._store.run(
            functools.partial(
                rows.advance,
                note=note,
                fields=fields,
                context=context,
                now=self._now(),
            ),
            settlement_id,
            state,
        )

    async def publish(self, settlement_id: str) -> SettlementRecord:
        record, event = await self._store.run(
            functools.partial(rows.publish, identity=self._identity, now=self._now()),
            settlement_id,
        )
        self._notify_outbox()
        log.info("settlement %s published as 31342 %s", settlement_id, event.id)
        return record


async def run_settlement(
    strategy: SettlementStrategy,
    host: GatewaySettlementHost,
    leadership: Leadership,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``strategy`` whenever this instance leads; stop it the moment it does not.

    A strategy that crashes is logged and started again after a pause: settlement is late,
    not lost, since every step it took is in its rows. The gateway keeps serving wallets
    meanwhile, which matters more than an hourly commitment.
    """
    task_status.started()
    while True:
        await leadership.acquire()
        try:
            async with trio.open_nursery() as nursery:

                async def watch(scope: trio.CancelScope = nursery.cancel_scope) -> None:
                    await leadership.watch()
                    scope.cancel()

                nursery.start_soon(watch)
                await nursery.start(strategy.serve, host)
        # A strategy is plugin code: whatever it raises is reported and it is restarted.
        except Exception:
            log.exception("settlement strategy failed; restarting in %.0fs", RESTART_DELAY)
            await leadership.release()
            await trio.sleep(RESTART_DELAY)
            continue
        await leadership.release()
