"""The assets the gateway lists: gBTC (its own, 1 unit = 1 sat) and the operator's others.

Wallets may name an asset by id or by ticker (PROTOCOL.md §2); replies give both.
"""

from __future__ import annotations

import time

import msgspec
from sqlalchemy.orm import Session

from ..config import CeremonySettings
from ..errors import UnknownAsset
from ..protocol.service import AssetInfo
from ..store.models import Asset

__all__ = ["GBTC", "AssetBook", "ListedAsset"]

GBTC = "gBTC"


class ListedAsset(msgspec.Struct, frozen=True):
    asset_id: str
    ticker: str
    name: str
    decimals: int = 0
    enabled: bool = True
    is_gateway_asset: bool = False

    def info(self) -> AssetInfo:
        return AssetInfo(self.asset_id, self.ticker, self.name or None, self.decimals)


class AssetBook:
    def __init__(self, settings: CeremonySettings) -> None:
        gbtc = ListedAsset(
            settings.gbtc_asset_id, GBTC, "Gateway BTC (1 unit = 1 sat)", is_gateway_asset=True
        )
        others = [
            ListedAsset(a.asset_id, a.ticker, a.name, a.decimals, a.enabled)
            for a in settings.assets
        ]
        self.assets: tuple[ListedAsset, ...] = (gbtc, *others)
        self.gbtc = gbtc
        self._by_id = {a.asset_id: a for a in self.assets}
        self._by_ticker = {a.ticker.lower(): a for a in self.assets}

    def resolve(self, name: str) -> str:
        """The asset id for an id or a ticker of an enabled asset; else UnknownAsset (2005)."""
        asset = self._by_id.get(name.lower()) or self._by_ticker.get(name.lower())
        if asset is None or not asset.enabled:
            raise UnknownAsset(f"unknown or disabled asset {name!r}")
        return asset.asset_id

    def get(self, asset_id: str) -> ListedAsset:
        return self._by_id[asset_id]

    def ticker(self, asset_id: str) -> str | None:
        asset = self._by_id.get(asset_id)
        return asset.ticker if asset else None

    def enabled(self) -> list[ListedAsset]:
        return [a for a in self.assets if a.enabled]

    def record(self, session: Session) -> None:
        """Make the assets table match the listing (in the caller's transaction)."""
        now = int(time.time())
        for asset in self.assets:
            row = session.get(Asset, asset.asset_id)
            if row is None:
                session.add(
                    Asset(
                        asset_id=asset.asset_id,
                        ticker=asset.ticker,
                        name=asset.name,
                        decimals=asset.decimals,
                        enabled=asset.enabled,
                        is_gateway_asset=asset.is_gateway_asset,
                        created_at=now,
                    )
                )
            else:
                row.ticker, row.name, row.enabled = asset.ticker, asset.name, asset.enabled
