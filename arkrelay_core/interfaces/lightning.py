"""The Lightning backend (lnd): invoices for lifts, payments for lands, an on-chain wallet.

Payment outcomes follow one rule: *unknown is pending*. A timeout, a lost stream or a
state the daemon cannot tell yet is ``PaymentStatus.PENDING``, never ``FAILED``; only a
payment that can no longer land is failed, and only then may the core refund it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import msgspec
import trio

__all__ = [
    "DecodedInvoice",
    "Invoice",
    "InvoiceState",
    "LightningBackend",
    "LightningInfo",
    "OnchainBalance",
    "OnchainTx",
    "Payment",
    "PaymentStatus",
    "TxConfirmation",
]


class InvoiceState(enum.StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"  # held (hold invoice): paid but not yet settled
    SETTLED = "settled"
    CANCELED = "canceled"


class PaymentStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"


class LightningInfo(msgspec.Struct, frozen=True):
    pubkey: str
    network: str
    block_height: int
    synced: bool
    version: str = ""


class Invoice(msgspec.Struct, frozen=True):
    payment_hash: str
    bolt11: str
    amount_msat: int
    state: InvoiceState
    expires_at: int
    memo: str = ""
    amount_paid_msat: int = 0
    add_index: int = 0
    settle_index: int = 0


class DecodedInvoice(msgspec.Struct, frozen=True):
    payment_hash: str
    amount_msat: int
    destination: str
    timestamp: int
    expiry: int
    network: str
    description: str = ""

    @property
    def expires_at(self) -> int:
        return self.timestamp + self.expiry


class Payment(msgspec.Struct, frozen=True):
    payment_hash: str
    status: PaymentStatus
    amount_msat: int = 0
    fee_msat: int = 0
    preimage: str | None = None
    failure_reason: str | None = None


class OnchainBalance(msgspec.Struct, frozen=True):
    confirmed_sat: int
    unconfirmed_sat: int = 0


class OnchainTx(msgspec.Struct, frozen=True):
    txid: str
    raw_hex: str


class TxConfirmation(msgspec.Struct, frozen=True):
    txid: str
    confirmations: int
    block_height: int | None = None
    block_hash: str | None = None


@runtime_checkable
class LightningBackend(Protocol):
    """Implemented by arkrelay-lnd (and its simulator); checked by contract-tests.

    Errors: BackendUnavailable, CircuitOpen (5005), InvoiceInvalid (5003); a definitely
    failed payment is returned as ``Payment(status=FAILED)``, not raised. Paying a
    payment hash this backend already paid or is paying raises InvoiceInvalid before any
    RPC is made. Hashes and preimages are lowercase hex.
    """

    features: frozenset[str]

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...

    def statistics(self) -> Mapping[str, Any]: ...

    async def get_info(self) -> LightningInfo: ...

    async def create_invoice(self, amount_msat: int, *, memo: str, expiry: int) -> Invoice: ...

    async def create_hold_invoice(
        self, payment_hash: str, amount_msat: int, *, memo: str, expiry: int
    ) -> Invoice: ...

    async def lookup_invoice(self, payment_hash: str) -> Invoice: ...

    async def settle_invoice(self, preimage: str) -> None: ...

    async def cancel_invoice(self, payment_hash: str) -> None: ...

    async def stream_invoices(
        self,
        send: trio.MemorySendChannel[Invoice],
        *,
        after_add_index: int = 0,
        after_settle_index: int = 0,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Every invoice update after the given indexes (so a restart misses nothing)."""
        ...

    async def decode_invoice(self, bolt11: str) -> DecodedInvoice: ...

    async def pay_invoice(
        self, bolt11: str, *, fee_limit_sat: int, timeout_seconds: int
    ) -> Payment: ...

    async def track_payment(self, payment_hash: str) -> Payment: ...

    async def onchain_balance(self) -> OnchainBalance: ...

    async def send_op_return(
        self, data: bytes, *, sat_per_vbyte: int, label: str = ""
    ) -> OnchainTx:
        """Broadcast a wallet transaction with an OP_RETURN output pushing ``data`` (1..80
        bytes) at ``sat_per_vbyte``; ``label`` names it in the wallet (a default if empty).
        Not idempotent: after an unclear failure, ``find_op_return`` tells whether it went
        out."""
        ...

    async def find_op_return(self, data: bytes) -> OnchainTx | None:
        """The wallet transaction whose OP_RETURN output pushes exactly ``data``, or None:
        how a restart adopts a commitment it broadcast instead of sending it twice."""
        ...

    async def bump_fee(self, txid: str, *, sat_per_vbyte: int) -> None:
        """Raise the effective fee rate of the unconfirmed wallet transaction ``txid`` to
        ``sat_per_vbyte`` by CPFP: a child spends the wallet's own output of it (its change)
        and pays for both. ``txid`` does not change; bumping again replaces the child. A
        transaction the wallet does not have, one already confirmed, or one with no output
        of the wallet raises BackendError."""
        ...

    async def rebroadcast(self, raw_hex: str) -> None:
        """Publish a transaction again; already in the mempool, known or confirmed counts
        as success, any other refusal raises BackendError."""
        ...

    async def tx_confirmations(self, txid: str) -> TxConfirmation:
        """Confirmations of a wallet transaction (0 while unconfirmed or unknown)."""
        ...
