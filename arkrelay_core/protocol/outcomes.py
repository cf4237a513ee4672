"""Published outcomes: 31340 confirmation, 31341 failure, 31342 L1 commitment, 31502 notice."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..codes import ErrorCode
from .intents import Fee

__all__ = [
    "Confirmation",
    "FailureNotice",
    "L1Commitment",
    "Notification",
    "PendingArkTx",
    "VtxoMove",
    "failure_notice",
]


class VtxoMove(msgspec.Struct, omit_defaults=True):
    """One VTXO spent or created, with its asset colour (what auditors recompute)."""

    vtxo_id: str
    owner: str
    asset_id: str
    amount: int
    ticker: str | None = None


class Confirmation(msgspec.Struct, omit_defaults=True):
    """Content of a 31340. Exactly one of ref_action_id / batch_id / payment_hash is set."""

    status: Literal["success"]
    ark_txid: str
    spent: list[VtxoMove]
    created: list[VtxoMove]
    timestamp: int
    ref_action_id: str | None = None
    batch_id: str | None = None
    payment_hash: str | None = None
    fee_paid: Fee | None = None

    def __post_init__(self) -> None:
        refs = [r for r in (self.ref_action_id, self.batch_id, self.payment_hash) if r is not None]
        if len(refs) != 1:
            raise ValueError("a confirmation names exactly one of action, batch or payment")


class PendingArkTx(msgspec.Struct, frozen=True):
    """An ark transaction the Ark server accepted (SubmitTx) that the session did not
    finalize: what the wallet needs to finalize it itself (PROTOCOL.md §3).

    The wallet signs the checkpoint input its VTXO funds (its collaborative leaf, as in
    a ``checkpoint`` challenge) in each of ``checkpoint_txs`` that lacks its signature,
    and calls the Ark server's ``FinalizeTx(ark_txid, checkpoint_txs)``.
    """

    ark_txid: str
    #: The ark transaction as the server co-signed it (base64 PSBT).
    final_ark_tx: str
    #: Every checkpoint transaction of ``ark_txid`` (base64 PSBTs), server-signed, with
    #: the owners' signatures the gateway had already collected.
    checkpoint_txs: list[str]


class FailureNotice(msgspec.Struct, omit_defaults=True):
    """Content of a 31341 (encrypted to the intent's or request's author)."""

    status: Literal["failure"]
    code: int
    message: str
    ref_action_id: str
    retryable: bool
    #: Only on a session that ended after SubmitTx without finalizing (3002).
    pending_tx: PendingArkTx | None = None


def failure_notice(
    code: ErrorCode,
    ref_id: str,
    message: str | None = None,
    *,
    pending_tx: PendingArkTx | None = None,
) -> FailureNotice:
    return FailureNotice(
        status="failure",
        code=int(code),
        message=message or code.message,
        ref_action_id=ref_id,
        # With its transaction pending the wallet's inputs are locked until it finalizes:
        # the same intent again could not succeed.
        retryable=code.retryable and pending_tx is None,
        pending_tx=pending_tx,
    )


class L1Commitment(msgspec.Struct):
    """Content of a 31342."""

    l1_txid: str
    block_height: int
    merkle_root_of_l2_txs: str
    l2_tx_count: int
    period_start: int
    period_end: int


class Notification(msgspec.Struct, omit_defaults=True):
    """Content of a 31502: something happened the wallet did not ask about just now."""

    type: str
    message: str
    ref_id: str | None = None
    payment_hash: str | None = None
    data: dict[str, Any] | None = None
