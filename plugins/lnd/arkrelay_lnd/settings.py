"""Operator settings of the lnd backend (``[backend.lightning] plugin = "lnd"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from arkrelay_core.config import Duration, HostPort, Secret
from arkrelay_core.grpcutil import CallPolicy

__all__ = ["LndSettings", "SimulatorSettings"]


class SimulatorSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The in-process simulated network, started when no ``target`` is configured. It
    writes ``<data dir>/sim-ln.json`` so `arkrelay sim ln ...` can drive its ``outside``
    node against the running gateway."""

    host: str = "127.0.0.1"
    #: Mine a block this often (0: only on demand).
    block_interval: Duration = Duration(0)
    #: Blocks leave out transactions whose package pays less than this (sat/vB), so
    #: commitments sent below it wait for a fee bump (0: every transaction is mined).
    fee_floor: Annotated[float, msgspec.Meta(ge=0)] = 0


class LndSettings(CallPolicy, forbid_unknown_fields=True, frozen=True):
    """Where lnd is and how to talk to it.

    lnd's gRPC port (10009) always speaks TLS with a self-signed certificate: point
    ``tls_cert`` at its ``tls.cert``. Every call carries a macaroon as hex metadata: give
    it hex-encoded (``macaroon = "env:LND_MACAROON"``) or as lnd's binary file
    (``macaroon_path``). Bake one with the permissions the README lists rather than
    using admin.macaroon. With no ``target`` the plugin runs its simulator in-process.
    Deadlines, retries and the breaker are CallPolicy's fields.
    """

    target: HostPort | None = None
    tls_cert: Path | None = None
    tls_server_name: str | None = None
    macaroon: Secret | None = None
    macaroon_path: Path | None = None
    #: Extra seconds to wait for lnd's verdict after a payment's own timeout has passed;
    #: still no verdict then means pending.
    pay_grace: Duration = Duration(10)
    #: Hold-invoice hashes and payments remembered to catch up after a stream reconnect.
    memory: Annotated[int, msgspec.Meta(ge=16)] = 4096
    simulator: SimulatorSettings = SimulatorSettings()

    def __post_init__(self) -> None:
        if self.macaroon is not None and self.macaroon_path is not None:
            raise ValueError("set macaroon or macaroon_path, not both")
