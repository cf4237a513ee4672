"""The gateway's own VTXOs (pre-provisioned liquidity for Lightning lifts).

``Inventory`` tracks the VTXOs owned by the gateway's service key, classifies the balance
against critical / warning / target levels, alerts once per level crossing, tops it up
through a ``Replenisher`` when one exists, and pays from it with ``send`` (the ark tx and
checkpoints signed by a signer bound to the service key).

Replenishing a real arkd means boarding on-chain funds into a batch, which needs MuSig2
tree signing; the gateway does not do that itself (see the plugin README for the
operator's procedure). The simulator boards on request (``BackendReplenisher``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import msgspec
import trio

from arkrelay_core.errors import ArkRelayError, InsufficientBalance
from arkrelay_core.interfaces import (
    ArkBackend,
    FinalizedTx,
    InputSignature,
    InputToSign,
    TxOutputSpec,
    Vtxo,
)

from .settings import InventorySettings

__all__ = [
    "BackendReplenisher",
    "Inventory",
    "InventoryAlert",
    "InventoryView",
    "Level",
    "Replenisher",
    "Signer",
]

log = logging.getLogger(__name__)

Level = Literal["ok", "warning", "critical"]
#: Signs a 32-byte BIP341 sighash with the service key; returns a 64-byte BIP340 signature.
Signer = Callable[[bytes], bytes]


class InventoryAlert(msgspec.Struct, frozen=True):
    """The balance crossed into ``level`` (from ``previous``)."""

    level: Level
    previous: Level
    balance: int
    levels: InventorySettings


class InventoryView(msgspec.Struct, frozen=True):
    """What the admin API shows about the inventory."""

    owner: str
    balance: int
    vtxo_count: int
    level: Level
    levels: InventorySettings
    vtxos: list[Vtxo]
    refreshed_at: float | None
    alerts: int
    replenished: int
    sends: int


class Replenisher(Protocol):
    async def replenish(self, owner: str, amount: int) -> None:
        """Bring ``amount`` more sats into ``owner``'s VTXOs (may take a batch to land)."""
        ...


class BackendReplenisher:
    """Boards through a backend that has the ``"board"`` feature (the simulator)."""

    def __init__(self, backend: ArkBackend) -> None:
        self._backend = backend

    async def replenish(self, owner: str, amount: int) -> None:
        await self._backend.board(owner, amount)


class Inventory:
    def __init__(
        self,
        backend: ArkBackend,
        owner: str,
        levels: InventorySettings,
        *,
        replenisher: Replenisher | None = None,
        on_alert: Callable[[InventoryAlert], None] | None = None,
    ) -> None:
        self._backend = backend
        self.owner = owner
        self.levels = levels
        self._replenisher = replenisher
        self._on_alert = on_alert
        self._vtxos: list[Vtxo] = []
        self._level: Level = "ok"
        self._refreshed_at: float | None = None
        self._send_lock = trio.Lock()
        self.alerts = 0
        self.replenished = 0
        self.sends = 0

    @property
    def balance(self) -> int:
        return sum(v.amount for v in self._vtxos)

    @property
    def level(self) -> Level:
        return self._level

    def classify(self, balance: int) -> Level:
        if balance < self.levels.critical:
            return "critical"
        if balance < self.levels.warning:
            return "warning"
        return "ok"

    async def refresh(self) -> Level:
        """Re-read the inventory from the backend; alert if the level changed."""
        self._vtxos = [
            v for v in await self._backend.list_vtxos(self.owner) if v.status == "spendable"
        ]
        self._refreshed_at = trio.current_time()
        level = self.classify(self.balance)
        if level != self._level:
            alert = InventoryAlert(level, self._level, self.balance, self.levels)
            self._level = level
            self.alerts += 1
            log_fn = log.warning if level != "ok" else log.info
            log_fn(
                "inventory of %s is %s: %d sats (critical %d, warning %d, target %d)",
                self.owner,
                level,
                alert.balance,
                self.levels.critical,
                self.levels.warning,
                self.levels.target,
            )
            if self._on_alert is not None:
                self._on_alert(alert)
        return level

    async def check(self) -> Level:
        """Refresh, and top up to the target when below warning and a replenisher exists."""
        level = await self.refresh()
        if level != "ok" and self._replenisher is not None:
            amount = self.levels.target - self.balance
            log.info("replenishing inventory of %s with %d sats", self.owner, amount)
            await self._replenisher.replenish(self.owner, amount)
            self.replenished += 1
            level = await self.refresh()
        return level

    async def monitor(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Check every ``levels.check_every`` until cancelled; a failed check is logged and
        retried at the next tick (the backend's breaker keeps this cheap while it is down)."""
        started = False
        while True:
            try:
                await self.check()
            except ArkRelayError as exc:
                log.warning("inventory check failed: %s", exc)
            if not started:
                task_status.started()
                started = True
            await trio.sleep(self.levels.check_every.seconds)

    def select(self, amount: int, dust: int) -> list[Vtxo]:
        """Largest VTXOs first until ``amount`` is covered with no change, or change of at
        least ``dust`` (a smaller change output could not be created)."""
        chosen: list[Vtxo] = []
        total = 0
        for vtxo in sorted(self._vtxos, key=lambda v: v.amount, reverse=True):
            chosen.append(vtxo)
            total += vtxo.amount
            if total == amount or total - amount >= dust:
                return chosen
        raise InsufficientBalance(
            f"inventory holds {self.balance} sats in {len(self._vtxos)} VTXOs; "
            f"{amount} needed (with change of 0 or at least {dust})"
        )

    async def send(self, outputs: Sequence[TxOutputSpec], sign: Signer) -> FinalizedTx:
        """Pay ``outputs`` from the inventory: build, sign both rounds with ``sign``, submit
        and finalize. One send at a time, so two sends never pick the same VTXO."""
        async with self._send_lock:
            await self.refresh()
            info = await self._backend.get_info()
            amount = sum(o.amount for o in outputs)
            inputs = self.select(amount, max(info.dust, info.vtxo_min_amount))
            change = sum(v.amount for v in inputs) - amount
            all_outputs = [*outputs, *([TxOutputSpec(self.owner, change)] if change else [])]
            built = await self._backend.build_offchain_tx(inputs, all_outputs)
            signed = self._backend.add_signatures(built.ark_tx, self._sign(built.to_sign, sign))
            submitted = await self._backend.submit_tx(signed, built.checkpoint_txs)
            finals = [
                self._backend.add_signatures(item.psbt, self._sign([item], sign))
                for item in submitted.to_sign
            ]
            result = await self._backend.finalize_tx(submitted.ark_txid, finals)
            self.sends += 1
            await self.refresh()
            return result

    def _sign(self, items: Sequence[InputToSign], sign: Signer) -> list[InputSignature]:
        return [
            InputSignature(item.input_index, self.owner, sign(bytes.fromhex(item.sighash)).hex())
            for item in items
        ]

    def view(self) -> InventoryView:
        return InventoryView(
            owner=self.owner,
            balance=self.balance,
            vtxo_count=len(self._vtxos),
            level=self._level,
            levels=self.levels,
            vtxos=list(self._vtxos),
            refreshed_at=self._refreshed_at,
            alerts=self.alerts,
            replenished=self.replenished,
            sends=self.sends,
        )

    def statistics(self) -> dict[str, object]:
        return {
            "balance": self.balance,
            "vtxo_count": len(self._vtxos),
            "level": self._level,
            "alerts": self.alerts,
            "replenished": self.replenished,
            "sends": self.sends,
        }
