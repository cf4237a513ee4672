"""Operator settings of the tapd backend (``[backend.assets] plugin = "tapd"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from arkrelay_core.config import Duration, HostPort, Secret
from arkrelay_core.grpcutil import CallPolicy

__all__ = ["TapdSettings"]


class TapdSettings(CallPolicy, forbid_unknown_fields=True, frozen=True):
    """Where tapd is and how to talk to it.

    Standalone tapd listens on 10029 with its own ``tls.cert`` and macaroon (hex in
    metadata ``macaroon`` on every call); under litd both are litd's port 8443 and
    ``~/.lit/tls.cert``. Asset invoices and payments over Lightning need litd in
    integrated mode: say so with ``asset_channels = true``. With no ``target`` the plugin
    runs its simulator in-process (asset channels included).
    """

    target: HostPort | None = None
    tls_cert: Path | None = None
    tls_server_name: str | None = None
    macaroon: Secret | None = None
    macaroon_path: Path | None = None
    asset_channels: bool = False
    #: How long mint_asset waits for the asset id after finalizing the batch.
    mint_timeout: Duration = Duration(60)
    #: Fee rate of the minting transaction (sat/kw; 0: tapd's estimate).
    mint_fee_rate: int = 0
    #: Extra seconds to wait for a payment's verdict after its own timeout.
    pay_grace: Duration = Duration(10)
    #: Units of gBTC (1 unit = 1 sat) the in-process simulator mints at start as the dev
    #: reserve backing the gateway's gBTC; 0 mints nothing. Ignored with a ``target``:
    #: on a real tapd, minting is the operator's decision.
    simulator_gbtc_reserve: Annotated[int, msgspec.Meta(ge=0)] = 100_000_000

    def __post_init__(self) -> None:
        if self.macaroon is not None and self.macaroon_path is not None:
            raise ValueError("set macaroon or macaroon_path, not both")
