"""Lightning land (PROTOCOL.md §5): VTXO in, payment out.

The invoice is checked and its payment hash reserved before any Ark call; the gateway
pays only once the wallet's VTXO is final in its hands. Unknown is pending: a payment
is refunded only once lnd says it can no longer land, and the refund is recorded before
it is sent, so a restart never refunds twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError, InvoiceInvalid, UnknownAsset
from ..interfaces import PaymentStatus
from ..protocol import LandParams, SessionState
from ..store.models import CeremonySession, Invoice
from ..store.models import Intent as IntentRow
from .finalize import confirm
from .lift import LightningPart
from .payouts import send_from_gateway, send_status
from .records import FINAL, Transition, add_unique, lock_session
from .spend import Output
from .state import Snap
from .steps import fail_in

__all__ = ["LandFlows"]

log = logging.getLogger(__name__)

#: How often a payment lnd calls pending is asked about again.
TRACK_EVERY = 2.0
#: An invoice must stay payable at least this long for the gateway to take it on.
MIN_INVOICE_LIFETIME = 60


class LandFlows(LightningPart):
    async def check_land(self, snap: Snap) -> None:
        """Validate the invoice and reserve its payment hash, before any Ark call."""
        row = await self.ports.run(lambda db: db.get(IntentRow, snap.intent_event_id))
        params = msgspec.convert(row.params, LandParams)
        asset_id = snap.context["asset_id"]
        if asset_id != self.ports.assets.gbtc.asset_id:
            raise UnknownAsset(f"landing {params.asset_id} on Lightning is not offered")
        decoded = await self.backend.decode_invoice(params.lightning_invoice)
        now = time.time()
        if decoded.amount_msat != params.amount * 1000:
            raise InvoiceInvalid(
                f"the invoice is for {decoded.amount_msat} msat, the intent lands "
                f"{params.amount} sat"
            )
        if decoded.expires_at < now + MIN_INVOICE_LIFETIME:
            raise InvoiceInvalid("the invoice has expired or expires within a minute")
        if decoded.network != self.ports.network:
            raise InvoiceInvalid(
                f"the invoice is for {decoded.network}, this gateway runs {self.ports.network}"
            )

        def reserve(db: Session) -> None:
            add_unique(
                db,
                Invoice(
                    payment_hash=decoded.payment_hash,
                    direction="out",
                    bolt11=params.lightning_invoice.strip(),
                    amount_sat=params.amount,
                    asset_id=asset_id,
                    owner=snap.author,
                    ref_id=snap.id,
                    state="reserved",
                    expires_at=decoded.expires_at,
                    created_at=int(now),
                    updated_at=int(now),
                    context={},
                ),
                InvoiceInvalid("this invoice is already being paid"),
            )
            session = lock_session(db, snap.id)
            assert session is not None
            session.context = {
                **session.context,
                "payment_hash": decoded.payment_hash,
                "figures": {"amount": params.amount},
            }

        await self.ports.run(reserve)
        snap.context["payment_hash"] = decoded.payment_hash

    async def pay(self, snap: Snap) -> bool:
        """Pay a land's invoice once its VTXO is the gateway's; False while pending."""
        ctx = snap.context
        payment_hash = ctx["payment_hash"]
        phase = ctx.get("phase")
        if phase == "refunding":
            await self._refund(snap)
            return False
        settings = self.ports.settings
        bolt11 = await self.ports.run(lambda db: db.get(Invoice, payment_hash).bolt11)
        if phase != "paying":
            await self._set_phase(snap.id, payment_hash, "paying")
            payment = await self.backend.pay_invoice(
                bolt11,
                fee_limit_sat=settings.land_fee_limit_sat,
                timeout_seconds=int(settings.land_payment_timeout.seconds),
            )
        else:
            payment = await self.backend.track_payment(payment_hash)
            if payment.status is PaymentStatus.FAILED and payment.failure_reason == "not_initiated":
                # Killed before lnd heard of it: nothing is in flight, so paying is safe.
                payment = await self.backend.pay_invoice(
                    bolt11,
                    fee_limit_sat=settings.land_fee_limit_sat,
                    timeout_seconds=int(settings.land_payment_timeout.seconds),
                )
        if payment.status is PaymentStatus.PENDING:
            log.info("land %s: payment %s pending", snap.id, payment_hash)
            self.ports.deadlines.add(snap.id, time.time() + TRACK_EVERY)
            return False
        if payment.status is PaymentStatus.SUCCEEDED:
            await self._landed(snap, payment.preimage)
            return False
        await self._set_phase(
            snap.id, payment_hash, "refunding", reason=payment.failure_reason or "failed"
        )
        snap.context["phase"] = "refunding"
        await self._refund(snap)
        return False

    async def _set_phase(
        self, session_id: str, payment_hash: str, phase: str, **extra: Any
    ) -> None:
        def run(db: Session) -> None:
            row = lock_session(db, session_id)
            assert row is not None
            row.context = {**row.context, "phase": phase, **extra}
            invoice = db.get(Invoice, payment_hash)
            assert invoice is not None
            invoice.state, invoice.updated_at = phase, int(time.time())

        await self.ports.run(run)

    async def _update_context(self, session_id: str, **values: Any) -> None:
        def run(db: Session) -> None:
            row = lock_session(db, session_id)
            assert row is not None
            row.context = {**row.context, **values}

        await self.ports.run(run)

    async def _landed(self, snap: Snap, preimage: str | None) -> None:
        def run(db: Session) -> list[Transition]:
            row = lock_session(db, snap.id)
            if row is None or row.state != SessionState.ARK_EXECUTED:
                return []
            now = time.time()
            invoice = db.get(Invoice, row.context["payment_hash"])
            assert invoice is not None
            invoice.state, invoice.preimage, invoice.updated_at = "paid", preimage, int(now)
            row.context = {k: v for k, v in row.context.items() if k != "phase"}
            return confirm(self.ports, db, row, row.context["spend"], now)

        self.ports.transitioned(await self.ports.run(run))

    async def _refund(self, snap: Snap) -> None:
        """Send the wallet back what it paid, then end the session with 5002."""
        ctx = await self.ports.run(lambda db: dict(db.get(CeremonySession, snap.id).context))
        paid = [o for o in ctx["spend"]["outputs"] if o["owner"] == self.ports.identity.pubkey]
        value = sum(o["amount"] for o in paid)
        refund = ctx.get("refund")
        status = "done" if refund else await send_status(self.ports, ctx.get("refund_send"))
        if status == "stuck":
            raise ArkRelayError(
                f"the refund {ctx['refund_send']['ark_txid']} was submitted before a restart and "
                "is not final; the operator must recover it",
                code=ErrorCode.INTERNAL,
            )
        if status == "done" and refund is None:
            refund = {"vtxo_id": f"{ctx['refund_send']['ark_txid']}:0", "amount": value}
        if refund is None:

            async def record(plan: dict[str, Any]) -> None:
                await self._update_context(snap.id, refund_send=plan)

            txid, _ = await send_from_gateway(
                self.ports, [Output(snap.author, ctx["asset_id"], value)], record
            )
            refund = {"vtxo_id": f"{txid}:0", "amount": value}

        def run(db: Session) -> list[Transition]:
            row = lock_session(db, snap.id)
            if row is None or row.state in FINAL:
                return []
            now = time.time()
            row.context = {**row.context, "refund": refund}
            invoice = db.get(Invoice, row.context["payment_hash"])
            assert invoice is not None
            invoice.state, invoice.refund_vtxo_id = "refunded", refund["vtxo_id"]
            invoice.updated_at = int(now)
            reason = row.context.get("reason", "failed")
            message = (
                f"Lightning payment failed ({reason}); refunded {refund['amount']} in VTXO "
                f"{refund['vtxo_id']}"
            )
            return fail_in(self.ports, db, row, ErrorCode.LIGHTNING_PAYMENT_FAILED, message, now)

        self.ports.transitioned(await self.ports.run(run))


def _context_of(db: Session, session_id: str) -> dict[str, Any]:
    row = db.get(CeremonySession, session_id)
    assert row is not None
    return dict(row.context)
