"""The asset backend (tapd): Taproot Asset reserves, minting, asset invoices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import msgspec
import trio

from .lightning import Invoice, Payment

__all__ = ["AssetBackend", "AssetBackendInfo", "AssetBalance", "AssetMeta"]


class AssetBackendInfo(msgspec.Struct, frozen=True):
    version: str
    network: str
    block_height: int
    lnd_pubkey: str = ""


class AssetMeta(msgspec.Struct, frozen=True):
    """An asset's identity. ``asset_id`` is 64 hex; ``name`` doubles as ticker."""

    asset_id: str
    name: str
    decimals: int = 0
    meta: bytes = b""


class AssetBalance(msgspec.Struct, frozen=True):
    asset_id: str
    name: str
    balance: int


@runtime_checkable
class AssetBackend(Protocol):
    """Implemented by arkrelay-tapd (and its simulator); checked by contract-tests.

    Errors: BackendUnavailable, CircuitOpen (5005), UnknownAsset (2005),
    AssetBackendFailure (5004). Optional features: ``"asset_channels"`` (invoices and
    payments in assets over Lightning; needs litd in integrated mode).
    """

    features: frozenset[str]

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...

    def statistics(self) -> Mapping[str, Any]: ...

    async def get_info(self) -> AssetBackendInfo: ...

    async def list_balances(self) -> list[AssetBalance]: ...

    async def fetch_asset_meta(self, asset_id: str) -> AssetMeta: ...

    async def mint_asset(self, name: str, amount: int, *, decimals: int = 0) -> AssetMeta:
        """Mint and finalize the batch; returns once the asset id is known."""
        ...

    async def create_asset_invoice(
        self,
        asset_id: str,
        asset_amount: int,
        *,
        memo: str,
        expiry: int,
        hold_payment_hash: str | None = None,
    ) -> Invoice: ...

    async def pay_asset_invoice(
        self, asset_id: str, bolt11: str, *, fee_limit_sat: int, timeout_seconds: int
    ) -> Payment: ...

    async def import_proof(self, proof: bytes) -> AssetMeta:
        """Verify and import the proof of an asset seen for the first time."""
        ...
