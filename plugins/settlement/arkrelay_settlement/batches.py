"""``ark-batches``: announce the Ark server's own commitments.

arkd anchors VTXOs on L1 in its batch (commitment) transactions. For each commitment the
Ark backend reports, this strategy finds the transactions of ours it settles (the ark txids
behind the VTXOs it spends and creates) and publishes a 31342 naming the commitment txid
and the merkle root of those transactions. arkd's stream does not replay history, so a
commitment that happens while no instance is leading is not announced; its transactions
stay uncommitted and are picked up by the next commitment that touches them, if any.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import trio

from arkrelay_core.errors import ArkRelayError
from arkrelay_core.interfaces import ArkEvent, SettlementHost, SettlementRecord

from .settings import ArkBatchesSettings

__all__ = ["ArkBatchesStrategy"]

log = logging.getLogger(__name__)

NAME = "ark-batches"


def _txid(outpoint: str) -> str:
    return outpoint.partition(":")[0]


class ArkBatchesStrategy:
    features = frozenset({"ark_commitments"})

    def __init__(
        self, settings: ArkBatchesSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._host: SettlementHost | None = None
        self._stats = {"commitments_seen": 0, "published": 0, "commit_failures": 0}

    def statistics(self) -> Mapping[str, Any]:
        return {**self._stats, "fee_bumps": 0, "rebroadcasts": 0, "serving": self._host is not None}

    async def settle_now(self) -> str | None:
        raise RuntimeError(
            "ark-batches follows the Ark server's batches; it has no period of its own to close"
        )

    async def serve(
        self,
        host: SettlementHost,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        if host.ark is None:
            raise ArkRelayError("the ark-batches settlement strategy needs [backend.ark]")
        self._host = host
        try:
            for record in await host.unfinished(NAME):
                await self._finish(record)
            send, receive = trio.open_memory_channel[ArkEvent](self.settings.buffer)
            async with trio.open_nursery() as nursery:
                await nursery.start(host.ark.stream_events, send)
                task_status.started()
                async with receive:
                    async for event in receive:
                        if event.kind == "commitment_tx":
                            await self._on_commitment(event)
        finally:
            self._host = None

    async def _on_commitment(self, event: ArkEvent) -> None:
        host = self._host
        assert host is not None
        self._stats["commitments_seen"] += 1
        candidates = {_txid(o) for o in event.spent} | {_txid(v.vtxo_id) for v in event.created}
        candidates.discard(event.txid)
        ours = await host.known_l2_txids(sorted(candidates))
        if not ours:
            log.debug("commitment %s settles none of our transactions", event.txid)
            return
        now = int(self._clock())
        height = event.block_height
        if height is None and host.lightning is not None:
            # arkd's stream does not say where the commitment confirmed; the chain tip when
            # it was seen is the height it can be found at or after.
            try:
                height = (await host.lightning.get_info()).block_height
            except ArkRelayError as exc:
                log.warning("no block height for commitment %s: %s", event.txid, exc)
        last_end = await host.last_period_end(NAME)
        record = await host.open_settlement(
            event.txid,
            strategy=NAME,
            period_start=last_end if last_end is not None and last_end <= now else now,
            period_end=now,
            ark_txids=ours,
            context={"observed_height": height},
        )
        await self._finish(record)

    async def _finish(self, record: SettlementRecord) -> None:
        host = self._host
        assert host is not None
        if record.state == "collecting":
            record = await host.advance(
                record.id, "committed", note="finalized by the Ark server", l1_txid=record.id
            )
        if record.state in ("committed", "confirming"):
            height = record.context.get("observed_height")
            record = await host.advance(
                record.id,
                "confirmed",
                note="Ark batch finalized" + (f" (chain tip {height})" if height else ""),
                block_height=int(height or 0),
            )
        if record.state == "confirmed":
            await host.publish(record.id)
            self._stats["published"] += 1
