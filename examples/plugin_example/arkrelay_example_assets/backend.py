"""``ExampleAssetBackend``: an ``arkrelay_core.interfaces.AssetBackend`` that is its own
asset daemon, in memory.

It mints assets anchored in transactions of its own chain (balances count once the anchor
has ``confirmations``), exports and imports issuance proofs, and mines a block every
``block_interval`` while ``serve`` runs. It has no Lightning node, so it declares no
``"asset_channels"`` feature and refuses asset invoices and payments with
``UnsupportedOperation``, as the interface asks. Everything is lost when the process ends.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

import trio
from arkrelay_core.errors import AssetBackendFailure, UnknownAsset, UnsupportedOperation
from arkrelay_core.interfaces import (
    AssetBackendInfo,
    AssetBalance,
    AssetMeta,
    Invoice,
    Payment,
    PluginContext,
)
from arkrelay_core.nostr import generate_secret_key, xonly_public_key

from . import __version__
from .chain import Chain
from .proofs import (
    Genesis,
    ProofError,
    asset_id_of,
    decode_proof,
    encode_proof,
    mint_problem,
)
from .settings import ExampleAssetsSettings, issuer_secret

__all__ = ["ExampleAssetBackend"]

_HEX32 = re.compile(r"[0-9a-fA-F]{64}")


@dataclasses.dataclass
class _Known:
    genesis: Genesis
    #: The minting transaction, for assets this issuer minted; None for imported ones.
    mint_txid: str | None
    #: The proof as received, for imported assets (re-exported unchanged).
    proof: bytes | None = None

    def meta(self, asset_id: str) -> AssetMeta:
        g = self.genesis
        return AssetMeta(asset_id=asset_id, name=g.name, decimals=g.decimals, meta=g.meta)


class ExampleAssetBackend:
    """One issuer: its chain, the assets it minted, and the assets it learned of."""

    features: frozenset[str] = frozenset()

    def __init__(self, settings: ExampleAssetsSettings, context: PluginContext) -> None:
        self.settings = settings
        self.network = context.network
        self.chain = Chain()
        self._secret = (
            issuer_secret(settings.issuer_key)
            if settings.issuer_key is not None
            else generate_secret_key()
        )
        self.issuer = xonly_public_key(self._secret)
        self._assets: dict[str, _Known] = {}
        self._imports = 0

    # ------------------------------------------------------------------------- lifecycle

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        interval = self.settings.block_interval.seconds
        if interval == 0:
            await trio.sleep_forever()
        while True:
            await trio.sleep(interval)
            self.chain.mine(1)

    def statistics(self) -> Mapping[str, Any]:
        pending = sum(
            1
            for known in self._assets.values()
            if known.mint_txid is not None and not self._confirmed(known)
        )
        return {
            **self.chain.statistics(),
            "assets_known": len(self._assets),
            "mints_pending": pending,
            "proofs_imported": self._imports,
        }

    # ---------------------------------------------------------------------------- reads

    async def get_info(self) -> AssetBackendInfo:
        await trio.lowlevel.checkpoint()
        return AssetBackendInfo(
            version=f"arkrelay-example-assets {__version__}",
            network=self.network,
            block_height=self.chain.block_height,
        )

    async def list_balances(self) -> list[AssetBalance]:
        await trio.lowlevel.checkpoint()
        held = [
            AssetBalance(asset_id, known.genesis.name, known.genesis.amount)
            for asset_id, known in self._assets.items()
            if known.mint_txid is not None and self._confirmed(known)
        ]
        return sorted(held, key=lambda b: (b.name, b.asset_id))

    async def fetch_asset_meta(self, asset_id: str) -> AssetMeta:
        await trio.lowlevel.checkpoint()
        return self._known(asset_id).meta(asset_id.lower())

    # --------------------------------------------------------------------------- writes

    async def mint_asset(self, name: str, amount: int, *, decimals: int = 0) -> AssetMeta:
        """Mint ``amount`` units; the asset id is known at once, the units count once the
        anchor has ``confirmations``."""
        await trio.lowlevel.checkpoint()
        problem = mint_problem(name, amount, decimals)
        if problem is not None:
            raise AssetBackendFailure(f"cannot mint {name!r}: {problem}")
        # The minting transaction commits to a fresh nonce, so two mints of one name are
        # two assets, as on tapd.
        txid = self.chain.broadcast(b"mint" + os.urandom(32) + name.encode())
        genesis = Genesis(f"{txid}:0", name, decimals, amount, b"", self.issuer)
        asset_id = asset_id_of(genesis).hex()
        self._assets[asset_id] = _Known(genesis, txid)
        return self._assets[asset_id].meta(asset_id)

    async def import_proof(self, proof: bytes) -> AssetMeta:
        """Verify an issuance proof and remember the asset (holding none of it)."""
        await trio.lowlevel.checkpoint()
        try:
            raw_id, genesis = decode_proof(proof)
        except ProofError as exc:
            raise AssetBackendFailure(f"proof refused: {exc}") from exc
        asset_id = raw_id.hex()
        if asset_id not in self._assets:
            self._assets[asset_id] = _Known(genesis, None, bytes(proof))
            self._imports += 1
        return self._assets[asset_id].meta(asset_id)

    def export_proof(self, asset_id: str) -> bytes:
        """The issuance proof of an asset this issuer minted (once its anchor confirmed) or
        imported; what another issuer's ``import_proof`` takes."""
        known = self._known(asset_id)
        if known.proof is not None:
            return known.proof
        if not self._confirmed(known):
            raise AssetBackendFailure(f"asset {asset_id} is not confirmed yet")
        return encode_proof(known.genesis, self._secret)

    # ----------------------------------------------------------------- asset channels

    async def create_asset_invoice(
        self,
        asset_id: str,
        asset_amount: int,
        *,
        memo: str,
        expiry: int,
        hold_payment_hash: str | None = None,
    ) -> Invoice:
        await trio.lowlevel.checkpoint()
        raise UnsupportedOperation("example-assets has no asset channels (no Lightning node)")

    async def pay_asset_invoice(
        self, asset_id: str, bolt11: str, *, fee_limit_sat: int, timeout_seconds: int
    ) -> Payment:
        await trio.lowlevel.checkpoint()
        raise UnsupportedOperation("example-assets has no asset channels (no Lightning node)")

    # -------------------------------------------------------------------------- helpers

    def _known(self, asset_id: str) -> _Known:
        known = self._assets.get(asset_id.lower()) if _is_hex32(asset_id) else None
        if known is None:
            raise UnknownAsset(f"unknown asset {asset_id!r}")
        return known

    def _confirmed(self, known: _Known) -> bool:
        if known.mint_txid is None:
            return True
        return self.chain.confirmations(known.mint_txid) >= self.settings.confirmations


def _is_hex32(value: str) -> bool:
    return _HEX32.fullmatch(value) is not None
