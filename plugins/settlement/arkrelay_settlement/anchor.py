"""``anchor``: each period's merkle root in an OP_RETURN, paid by the Lightning backend's
on-chain wallet, announced as a 31342 once it has enough confirmations.

Periods are contiguous: a settlement covers from where the previous one ended to a
schedule boundary, and holds every transaction finalized before that boundary that no
earlier settlement holds, so a ceremony that finished late is committed next time rather
than never. A period with nothing in it makes no row and no transaction.

Every step is written to the settlement's row before the next one is taken. The one step
that cannot be written first is the broadcast itself, so before broadcasting a root the
strategy looks for a wallet transaction already carrying it: a leader that died right after
sending is followed by one that adopts its transaction instead of paying for a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import trio

from arkrelay_core.errors import ArkRelayError
from arkrelay_core.interfaces import (
    LightningBackend,
    SettlementHost,
    SettlementRecord,
)
from arkrelay_core.settlement.merkle import commitment_payload

from .schedule import Schedule
from .settings import AnchorSettings

__all__ = ["AnchorStrategy"]

log = logging.getLogger(__name__)

NAME = "anchor"


class AnchorStrategy:
    features = frozenset({"schedule", "op_return", "fee_bump"})

    def __init__(self, settings: AnchorSettings, *, clock: Callable[[], float] = time.time):
        self.settings = settings
        every = settings.every.seconds if settings.every is not None else None
        if every is None and settings.cron is None:
            every = 3600.0
        self.schedule = Schedule(every=every, cron=settings.cron)
        self._clock = clock
        self._host: SettlementHost | None = None
        self._wake = trio.Event()
        self._lock = trio.Lock()
        self._stats = {
            "commit_failures": 0,
            "fee_bumps": 0,
            "rebroadcasts": 0,
            "published": 0,
            "queued": 0,
        }

    # ------------------------------------------------------------------ strategy API

    def statistics(self) -> Mapping[str, Any]:
        return {**self._stats, "schedule": str(self.schedule), "serving": self._host is not None}

    async def serve(
        self,
        host: SettlementHost,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        if host.lightning is None:
            raise ArkRelayError(
                "the anchor settlement strategy commits through the Lightning backend's "
                "on-chain wallet: configure [backend.lightning]"
            )
        self._host = host
        try:
            task_status.started()
            while True:
                async with self._lock:
                    await self._close_periods(self._boundary())
                    pending = await self._advance_all()
                with trio.move_on_after(self._sleep_for(pending)):
                    await self._wake.wait()
                self._wake = trio.Event()
        finally:
            self._host = None

    async def settle_now(self) -> str | None:
        if self._host is None:
            raise RuntimeError("this instance is not settling (it does not hold leadership)")
        async with self._lock:
            # Up to and including the current second: what just finished is in.
            opened = await self._close_periods(int(self._clock()) + 1)
        self._wake.set()
        return opened

    # ------------------------------------------------------------------ periods

    def _boundary(self) -> int:
        """The latest boundary whose grace time has passed."""
        return self.schedule.last_boundary(self._clock() - self.settings.grace.seconds)

    def _sleep_for(self, pending: bool) -> float:
        now = self._clock()
        until_next = self.schedule.next_boundary(now - self.settings.grace.seconds) - (
            now - self.settings.grace.seconds
        )
        if pending:
            return max(0.05, min(until_next, self.settings.poll.seconds))
        return max(0.05, until_next)

    async def _close_periods(self, boundary: int) -> str | None:
        """Open a settlement for what was finalized before ``boundary``; its id, or None."""
        host = self._require_host()
        last_end = await host.last_period_end(NAME)
        if last_end is not None and last_end >= boundary:
            return None
        txs = await host.uncommitted_l2_txs(boundary)
        if not txs:
            return None
        start = last_end if last_end is not None else self.schedule.last_boundary(txs[0][1])
        settlement_id = f"{NAME}-{boundary}"
        record = await host.open_settlement(
            settlement_id,
            strategy=NAME,
            period_start=start,
            period_end=boundary,
            ark_txids=[txid for txid, _ in txs],
            context={"sat_per_vbyte": self.settings.sat_per_vbyte, "bumps": 0},
        )
        log.info(
            "settlement %s opened: %d L2 transactions, root %s",
            settlement_id,
            record.l2_tx_count,
            record.merkle_root,
        )
        return settlement_id

    # ------------------------------------------------------------------ each settlement

    async def _advance_all(self) -> bool:
        """Move every unfinished settlement on as far as it can go now; True if any is left."""
        host = self._require_host()
        left = await host.unfinished(NAME)
        queued = 0
        for record in left:
            try:
                record = await self._advance(record)
            except ArkRelayError as exc:
                # The backend is down or refused: the period stays queued for the next run.
                self._stats["commit_failures"] += 1
                log.warning("settlement %s waits (%s): %s", record.id, record.state, exc)
                record = await host.advance(
                    record.id, record.state, context={"last_error": str(exc)[:500]}
                )
            if record.state == "collecting":
                queued += 1
        self._stats["queued"] = queued
        return any(r.state not in ("published", "failed") for r in left)

    async def _advance(self, record: SettlementRecord) -> SettlementRecord:
        if record.state == "collecting":
            record = await self._commit(record)
        if record.state in ("committed", "confirming"):
            record = await self._follow(record)
        if record.state == "confirmed":
            record = await self._require_host().publish(record.id)
            self._stats["published"] += 1
        return record

    async def _commit(self, record: SettlementRecord) -> SettlementRecord:
        host, lightning = self._require_host(), self._lightning()
        assert record.merkle_root is not None
        payload = commitment_payload(record.merkle_root)
        existing = await lightning.find_op_return(payload)
        rate = int(record.context.get("sat_per_vbyte", self.settings.sat_per_vbyte))
        if existing is not None:
            tx, note = existing, f"adopted {existing.txid}, already in the wallet"
        else:
            tx = await lightning.send_op_return(
                payload, sat_per_vbyte=rate, label=f"arkrelay settlement {record.id}"
            )
            note = f"broadcast {tx.txid} at {rate} sat/vB"
        now = self._clock()
        log.info("settlement %s committed: %s", record.id, note)
        return await host.advance(
            record.id,
            "committed",
            note=note,
            l1_txid=tx.txid,
            context={
                "raw_tx": tx.raw_hex,
                "broadcast_at": int(now),
                "next_bump_at": int(now + self.settings.bump_after.seconds),
                "last_error": None,
            },
        )

    async def _follow(self, record: SettlementRecord) -> SettlementRecord:
        host, lightning = self._require_host(), self._lightning()
        assert record.l1_txid is not None
        seen = await lightning.tx_confirmations(record.l1_txid)
        wanted = self.settings.confirmations
        if seen.confirmations >= wanted:
            return await host.advance(
                record.id,
                "confirmed",
                note=f"{seen.confirmations} confirmations at height {seen.block_height}",
                confirmations=seen.confirmations,
                block_height=seen.block_height,
            )
        if seen.confirmations > 0:
            if seen.confirmations == record.confirmations and record.state == "confirming":
                return record
            return await host.advance(
                record.id,
                "confirming",
                note=f"{seen.confirmations}/{wanted} confirmations",
                confirmations=seen.confirmations,
                block_height=seen.block_height,
            )
        if record.state == "confirming" and record.confirmations:
            # Its block was reorganised away; it is waiting in the mempool again.
            record = await host.advance(
                record.id, "confirming", note="reorganised out; unconfirmed", confirmations=0
            )
        if self._clock() >= record.context.get("next_bump_at", 0):
            record = await self._bump(record)
        return record

    async def _bump(self, record: SettlementRecord) -> SettlementRecord:
        """Raise the fee (CPFP) while the cap allows, else broadcast the tx again."""
        host, lightning = self._require_host(), self._lightning()
        assert record.l1_txid is not None
        rate = int(record.context.get("sat_per_vbyte", self.settings.sat_per_vbyte))
        bumps = int(record.context.get("bumps", 0))
        delay = self.settings.bump_after.seconds * 2 ** (bumps + 1)
        if rate < self.settings.max_sat_per_vbyte:
            new_rate = min(self.settings.max_sat_per_vbyte, rate * 2)
            await lightning.bump_fee(record.l1_txid, sat_per_vbyte=new_rate)
            self._stats["fee_bumps"] += 1
            note = f"fee bumped {rate} -> {new_rate} sat/vB"
            context = {"sat_per_vbyte": new_rate, "bumps": bumps + 1}
        else:
            await lightning.rebroadcast(record.context["raw_tx"])
            self._stats["rebroadcasts"] += 1
            note = f"rebroadcast at the {rate} sat/vB cap"
            context = {"bumps": bumps + 1}
        log.info("settlement %s unconfirmed: %s", record.id, note)
        return await host.advance(
            record.id,
            record.state,
            note=note,
            context={**context, "next_bump_at": int(self._clock() + delay)},
        )

    # ------------------------------------------------------------------ helpers

    def _require_host(self) -> SettlementHost:
        if self._host is None:
            raise RuntimeError("the anchor strategy is not serving")
        return self._host

    def _lightning(self) -> LightningBackend:
        lightning = self._require_host().lightning
        assert lightning is not None
        return lightning
