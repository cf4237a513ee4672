"""Operator settings of the arkd backend (``[backend.ark] plugin = "arkd"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from arkrelay_core.config import Duration, HostPort, Secret
from arkrelay_core.grpcutil import CallPolicy

__all__ = ["ArkdSettings", "InventorySettings", "SimulatorSettings"]


class InventorySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The gateway's own VTXOs (used for Lightning lifts), in sats.

    Below ``warning`` or ``critical`` the monitor logs and alerts once per crossing; when
    a replenisher is available (the simulator) it tops the balance up to ``target``.
    """

    critical: Annotated[int, msgspec.Meta(ge=0)] = 10_000
    warning: Annotated[int, msgspec.Meta(ge=0)] = 50_000
    target: Annotated[int, msgspec.Meta(ge=0)] = 200_000
    check_every: Duration = Duration(60)

    def __post_init__(self) -> None:
        if not self.critical <= self.warning <= self.target:
            raise ValueError("inventory levels must satisfy critical <= warning <= target")


class SimulatorSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The in-process arkd simulator, started when no ``target`` is configured."""

    listen: HostPort = HostPort("127.0.0.1", 0)
    #: The port of the simulator's arkd REST interface, on the ``listen`` host (arkd
    #: serves REST on its gRPC port; grpcio cannot share one). Its URL is the Ark server
    #: URL wallets get from get_info. 0 picks a free port, -1 serves no REST.
    rest_port: Annotated[int, msgspec.Meta(ge=-1, le=65535)] = 0
    unilateral_exit_delay: Annotated[int, msgspec.Meta(ge=1)] = 512
    vtxo_lifetime: Duration = Duration(7 * 86400)


class ArkdSettings(CallPolicy, forbid_unknown_fields=True, frozen=True):
    """Where arkd is and how to talk to it.

    With no ``target`` the plugin runs its simulator in-process and talks to it over gRPC
    on loopback (the embedded default). arkd serves plaintext by default
    (``ARKD_NO_TLS=true``); set ``tls = true`` (and ``tls_cert`` for its self-signed
    ``<datadir>/tls/cert.pem``) when it does not. arkd's public services need no macaroon;
    one configured here is sent as ``macaroon`` metadata on every call. Deadlines, retries
    and the breaker are CallPolicy's fields.
    """

    target: HostPort | None = None
    tls: bool = False
    tls_cert: Path | None = None
    tls_server_name: str | None = None
    macaroon: Secret | None = None
    #: Send GetInfo's digest as ``x-digest`` (needed when arkd sets
    #: ARKD_DIGEST_HEADER_REQUIRED).
    send_digest: bool = False
    #: arkd's REST URL as wallets reach it (e.g. "https://ark.example.com"), handed to
    #: them in get_info; with the simulator, its own REST URL is used.
    public_url: str | None = None
    inventory: InventorySettings = InventorySettings()
    simulator: SimulatorSettings = SimulatorSettings()
