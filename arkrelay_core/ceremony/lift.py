"""Lightning lift (PROTOCOL.md §5): hold invoice in, VTXO out.

Keyed by payment hash in the ``invoices`` table, and every step is recorded before the
next begins, so a stream that replays an invoice, or a restart in the middle, never
credits twice: the VTXO is delivered when the payment is held, the invoice settled once
the VTXO is final.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import Any

import msgspec
import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session

from ..errors import ArkRelayError, UnknownAsset
from ..interfaces import Invoice as LnInvoice
from ..interfaces import InvoiceState
from ..outbox import enqueue
from ..protocol import Confirmation, Notification, VtxoMove
from ..protocol.tags import lift_confirmation_d
from ..store.models import Invoice
from .payouts import send_from_gateway, send_status
from .ports import Ports
from .spend import Output

__all__ = ["LiftFlows", "LightningPart"]

log = logging.getLogger(__name__)


class LightningPart:
    """What lift and land share: the ports, and the Lightning backend through them."""

    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    @property
    def backend(self) -> Any:
        return self.ports.lightning_backend


class LiftFlows(LightningPart):
    async def open_lift(
        self,
        author: str,
        request_id: str,
        request_event_id: str,
        asset_id: str,
        amount: int,
        scheme: str,
    ) -> LnInvoice:
        """Issue the hold invoice of a lift; the VTXO follows when it is paid."""
        if asset_id != self.ports.assets.gbtc.asset_id:
            raise UnknownAsset("lifting into assets other than gBTC is not offered")
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        expiry = int(self.ports.settings.lift_invoice_expiry.seconds)
        invoice = await self.backend.create_hold_invoice(
            payment_hash, amount * 1000, memo=f"ArkRelay lift {request_id}"[:120], expiry=expiry
        )
        now = int(time.time())

        def run(db: Session) -> None:
            db.add(
                Invoice(
                    payment_hash=payment_hash,
                    direction="in",
                    bolt11=invoice.bolt11,
                    amount_sat=amount,
                    asset_id=asset_id,
                    owner=author,
                    ref_id=request_id,
                    state="open",
                    preimage=preimage.hex(),
                    expires_at=invoice.expires_at,
                    created_at=now,
                    updated_at=now,
                    context={"request_event_id": request_event_id, "scheme": scheme},
                )
            )

        await self.ports.run(run)
        return invoice

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.ports.lightning is None:
            task_status.started()
            return
        send, receive = trio.open_memory_channel[LnInvoice](64)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.ports.lightning.stream_invoices, send)
            task_status.started()
            for payment_hash in await self.ports.run(_lifts_in_flight):
                nursery.start_soon(self._lift_step, payment_hash, None)
            # Paid (or expired) while the gateway was down: ask lnd how each open one is.
            for payment_hash in await self.ports.run(_lifts_open):
                nursery.start_soon(self._lift_lookup, payment_hash)
            async with receive:
                async for update in receive:
                    nursery.start_soon(self._lift_step, update.payment_hash, update.state)

    async def _lift_lookup(self, payment_hash: str) -> None:
        try:
            invoice = await self.backend.lookup_invoice(payment_hash)
        except ArkRelayError as exc:
            log.warning("lift %s: cannot look the invoice up: %s", payment_hash, exc)
            return
        await self._lift_step(payment_hash, invoice.state)

    async def _lift_step(self, payment_hash: str, seen: InvoiceState | None) -> None:
        key = f"lift:{payment_hash}"
        delay = 1.0
        while True:
            async with self.ports.turns.lock(key):
                try:
                    await self._lift(payment_hash, seen)
                    break
                except ArkRelayError as exc:
                    log.warning("lift %s: %s; trying again in %.0fs", payment_hash, exc, delay)
                except sa.exc.SQLAlchemyError:
                    self.ports.store.errors.count("lift")
                    log.exception(
                        "lift %s: database error; trying again in %.0fs", payment_hash, delay
                    )
            # A delivered VTXO must end in a settled invoice: keep at it (lnd may be down).
            await trio.sleep(delay)
            delay = min(60.0, delay * 2)
            seen = None
        self.ports.turns.forget(key)

    async def _lift(self, payment_hash: str, seen: InvoiceState | None) -> None:
        row = await self.ports.run(lambda db: db.get(Invoice, payment_hash))
        if row is None or row.direction != "in":
            return
        if row.state == "open" and seen is InvoiceState.CANCELED:
            await self._lift_end(row, "expired", "the invoice expired unpaid")
            return
        if row.state == "open" and seen is InvoiceState.ACCEPTED:
            if not await self._lift_claim(payment_hash):
                return
            row.state = "delivering"
        if row.state == "delivering":
            plan = row.context.get("send")
            status = await send_status(self.ports, plan)
            if status == "done":
                outputs = [msgspec.convert(o, Output) for o in plan["outputs"]]
                await self._lift_delivered(payment_hash, plan["ark_txid"], outputs)
            elif status == "stuck":
                # Submitted before a restart, never final: nobody was credited, so the
                # payer gets the money back rather than risk a second VTXO.
                await self.backend.cancel_invoice(payment_hash)
                await self._lift_end(row, "canceled", "the VTXO delivery did not complete")
                return
            else:
                try:
                    txid, outputs = await send_from_gateway(
                        self.ports,
                        [Output(row.owner, row.asset_id, row.amount_sat)],
                        lambda plan: self._record_send(payment_hash, plan),
                    )
                except ArkRelayError as exc:
                    await self.backend.cancel_invoice(payment_hash)
                    await self._lift_end(row, "canceled", f"the VTXO could not be delivered: {exc}")
                    return
                await self._lift_delivered(payment_hash, txid, outputs)
            row = await self.ports.run(lambda db: db.get(Invoice, payment_hash))
        if row.state == "delivered":
            await self.backend.settle_invoice(row.preimage)
            await self._lift_confirm(payment_hash)

    async def _lift_claim(self, payment_hash: str) -> bool:
        def run(db: Session) -> bool:
            invoice = _lock_invoice(db, payment_hash)
            if invoice is None or invoice.state != "open":
                return False
            invoice.state, invoice.updated_at = "delivering", int(time.time())
            return True

        return await self.ports.run(run)

    async def _record_send(self, payment_hash: str, plan: dict[str, Any]) -> None:
        def run(db: Session) -> None:
            invoice = _lock_invoice(db, payment_hash)
            assert invoice is not None
            invoice.context = {**invoice.context, "send": plan}

        await self.ports.run(run)

    async def _lift_delivered(self, payment_hash: str, txid: str, outputs: list[Output]) -> None:
        def run(db: Session) -> None:
            invoice = _lock_invoice(db, payment_hash)
            assert invoice is not None
            invoice.state, invoice.updated_at = "delivered", int(time.time())
            invoice.context = {
                **invoice.context,
                "ark_txid": txid,
                "outputs": msgspec.to_builtins(outputs),
            }

        await self.ports.run(run)

    async def _lift_confirm(self, payment_hash: str) -> None:
        assets = self.ports.assets

        def run(db: Session) -> None:
            invoice = _lock_invoice(db, payment_hash)
            if invoice is None or invoice.state != "delivered":
                return
            now = int(time.time())
            txid = invoice.context["ark_txid"]
            created = [
                VtxoMove(
                    f"{txid}:{i}",
                    o["owner"],
                    o["asset_id"],
                    o["amount"],
                    assets.ticker(o["asset_id"]),
                )
                for i, o in enumerate(invoice.context["outputs"])
            ]
            content = Confirmation(
                status="success",
                ark_txid=txid,
                spent=[],
                created=created,
                timestamp=now,
                payment_hash=payment_hash,
            )
            event = self.ports.messages.confirmation(
                content,
                d=lift_confirmation_d(payment_hash),
                answered=[invoice.context.get("request_event_id", "")],
                parties=[invoice.owner],
            )
            enqueue(db, event)
            invoice.state, invoice.updated_at = "settled", now

        await self.ports.run(run)
        self.ports.notify_outbox()

    async def _lift_end(self, row: Invoice, state: str, message: str) -> None:
        def run(db: Session) -> None:
            invoice = _lock_invoice(db, row.payment_hash)
            if invoice is None or invoice.state in ("settled", "expired", "canceled"):
                return
            invoice.state, invoice.updated_at = state, int(time.time())
            note = self.ports.messages.notification(
                Notification(
                    type=f"lift_{state}",
                    message=message,
                    ref_id=invoice.ref_id,
                    payment_hash=invoice.payment_hash,
                ),
                author=invoice.owner,
                scheme=invoice.context.get("scheme", "nip44"),
                expires_at=invoice.expires_at,
            )
            enqueue(db, note)

        await self.ports.run(run)
        self.ports.notify_outbox()


def _lock_invoice(db: Session, payment_hash: str) -> Invoice | None:
    return db.scalar(
        sa.select(Invoice).where(Invoice.payment_hash == payment_hash).with_for_update()
    )


def _lifts_open(db: Session) -> list[str]:
    return list(
        db.scalars(
            sa.select(Invoice.payment_hash).where(
                Invoice.direction == "in", Invoice.state == "open"
            )
        ).all()
    )


def _lifts_in_flight(db: Session) -> list[str]:
    return list(
        db.scalars(
            sa.select(Invoice.payment_hash).where(
                Invoice.direction == "in", Invoice.state.in_(["delivering", "delivered"])
            )
        ).all()
    )
