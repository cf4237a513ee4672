"""The validated shape of an operator's config file, and the errors loading it raises."""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from ..ceremony.fees import FeeSchedule
from .values import Duration, HostPort, Secret

__all__ = [
    "BACKEND_ROLES",
    "DATABASE_SCHEMES",
    "DEFAULTS_SOURCE",
    "DEFAULT_DATA_DIR",
    "GBTC_ASSET_ID",
    "MIN_ADMIN_KEY_LENGTH",
    "NETWORKS",
    "PLUGIN_ROLES",
    "AssetListing",
    "CeremonySettings",
    "Config",
    "ConfigError",
    "GatewaySettings",
    "Network",
    "OutboxSettings",
    "PluginSection",
    "SettingsResolver",
    "UnknownPluginError",
    "default_database",
]

Network = Literal["mainnet", "testnet", "testnet4", "signet", "mutinynet", "regtest"]
NETWORKS: tuple[str, ...] = typing.get_args(Network)
BACKEND_ROLES: tuple[str, ...] = ("ark", "lightning", "assets")
PLUGIN_ROLES: tuple[str, ...] = ("transport", *BACKEND_ROLES, "settlement")
DEFAULTS_SOURCE = "<defaults>"
DEFAULT_DATA_DIR = Path(".arkrelay")
MIN_ADMIN_KEY_LENGTH = 16
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")

SettingsResolver = Callable[[str, str], type[msgspec.Struct]]
"""``(role, plugin_name) -> settings Struct type``; raises `UnknownPluginError`."""


class ConfigError(Exception):
    """The config file is unreadable or invalid; ``str()`` is one line for the operator."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


class UnknownPluginError(LookupError):
    """No installed plugin of ``role`` is called ``name``; ``available`` lists those that are.

    ``note`` adds what else the operator should know, such as plugins that failed to load.
    """

    def __init__(self, role: str, name: str, available: Iterable[str], note: str = "") -> None:
        self.role = role
        self.name = name
        self.available = sorted(available)
        installed = ", ".join(self.available) or "none"
        message = f"no installed {role} plugin named {name!r} (installed: {installed})"
        super().__init__(f"{message}; {note}" if note else message)


def default_database(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'arkrelay.db').as_posix()}"


class GatewaySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[gateway]`` table."""

    #: The Bitcoin network served: intents and Lightning invoices for another are refused,
    #: and on mainnet the service key must already exist and its passphrase be given.
    network: Network = "regtest"
    #: Where the gateway keeps its files: the default database and service key, the admin
    #: audit log, and plugins' state.
    data_dir: Path = DEFAULT_DATA_DIR
    #: The store's URL: ``sqlite:///PATH`` for a single instance, or
    #: ``postgresql+psycopg://USER@HOST/DBNAME``, which several instances may share.
    database: str = default_database(DEFAULT_DATA_DIR)
    #: The service key file (``arkrelay keys new``); off mainnet a missing one is created at
    #: start, under the dev passphrase unless ``ARKRELAY_KEY_PASSPHRASE`` is set.
    key_file: Path = DEFAULT_DATA_DIR / "gateway.key"
    #: Intents (batch legs too) whose ``created_at`` is older than this are refused as expired
    #: (1003).
    event_window: Duration = Duration(3600)
    #: The key ``/admin`` requires in the ``X-Admin-Key`` header; unset turns ``/admin`` off.
    admin_key: Secret | None = None


class OutboxSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[outbox]`` table: how hard the gateway tries to get its events out."""

    #: Relays (over all transports) that must accept an event before it counts as sent.
    min_accepts: Annotated[int, msgspec.Meta(ge=1)] = 1
    #: Wait before retrying an event too few relays accepted; it doubles with each retry.
    retry_initial: Duration = Duration(2)
    #: Longest wait between retries; an event is retried until sent, however long it takes.
    retry_max: Duration = Duration(300)
    #: Events published concurrently.
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=256)] = 16


class HttpSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[http]`` table: the read-only API, ``/admin`` (with ``gateway.admin_key``),
    ``/metrics`` and ``/openapi.json``. Without the table the HTTP server does not run."""

    #: Address the HTTP server binds, for the API, ``/admin`` and ``/metrics`` alike.
    listen: HostPort = HostPort("127.0.0.1", 8080)
    #: Largest request body accepted (the API takes small JSON bodies at most).
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16 * 1024 * 1024)] = 65_536
    #: Items per page of a list unless the request asks for fewer.
    page_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


#: gBTC's asset id unless the operator sets another: sha256("arkrelay:gBTC"). gBTC is the
#: gateway's own asset (1 unit = 1 sat), so it needs an id before any tapd mints anything.
GBTC_ASSET_ID = "41d9f514aeff45317c89fdd94be863da27294684e50f889ea65cd0968d494a58"

Hex64 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$(?!\n)")]
Ticker = Annotated[str, msgspec.Meta(pattern="^[A-Za-z][A-Za-z0-9]{1,15}$(?!\n)")]


class AssetListing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An asset the gateway lists besides gBTC (``[[ceremony.assets]]``)."""

    #: The short name wallets may use instead of the id (case-insensitive).
    ticker: Ticker
    #: The asset's id, as the assets backend knows it.
    asset_id: Hex64
    #: A display name for wallets.
    name: str = ""
    #: Decimal places wallets show; amounts on the wire are always in base units.
    decimals: Annotated[int, msgspec.Meta(ge=0, le=18)] = 0
    #: ``false`` hides the asset from wallets and refuses intents naming it (2005).
    enabled: bool = True


class CeremonySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[ceremony]`` table: signing sessions, limits, fees, assets, Lightning policy."""

    #: How long a wallet has to sign each challenge; a step left unsigned fails the session
    #: (3002), or after SubmitTx is challenged again until the session's end.
    step_timeout: Duration = Duration(120)
    #: How long a whole signing session may run (never past the intent's own expiry); then
    #: it fails (3002; after SubmitTx with the pending transaction for the wallet).
    session_timeout: Duration = Duration(900)
    #: Intents and service requests one pubkey may send per minute (beyond: 1008).
    requests_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 120
    #: Sessions one pubkey may have open at once (beyond: 1008).
    max_open_sessions: Annotated[int, msgspec.Meta(ge=1)] = 16
    #: This instance's name in session leases; empty means the host name. Instances sharing
    #: a database need distinct names, and a restarted instance takes its own leases back at
    #: once.
    instance: str = ""
    #: A lease not renewed for this long is taken over by another instance.
    lease_ttl: Duration = Duration(30)
    #: The asset id gBTC (1 unit = 1 sat) is listed and recorded under; VTXOs keep the id
    #: they were recorded with, so choose it before the first one.
    gbtc_asset_id: Hex64 = GBTC_ASSET_ID
    #: Assets wallets may use besides gBTC, one ``[[ceremony.assets]]`` table each.
    assets: list[AssetListing] = msgspec.field(default_factory=list)
    fees: FeeSchedule = FeeSchedule()
    #: Routing fee the gateway pays at most to land a payment, in sats.
    land_fee_limit_sat: Annotated[int, msgspec.Meta(ge=0)] = 100
    #: How long the Lightning backend tries to pay a land's invoice; a payment still in
    #: flight then is tracked until it settles or fails, never refunded early.
    land_payment_timeout: Duration = Duration(60)
    #: How long the hold invoice a lift issues stays payable.
    lift_invoice_expiry: Duration = Duration(3600)


class PluginSection(msgspec.Struct, frozen=True):
    """One configured plugin instance: its name and its decoded settings Struct."""

    plugin: str
    settings: msgspec.Struct


class Config(msgspec.Struct, frozen=True):
    """The whole validated config. ``backends`` is keyed by role (ark, lightning, assets)."""

    gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)
    outbox: OutboxSettings = msgspec.field(default_factory=OutboxSettings)
    ceremony: CeremonySettings = msgspec.field(default_factory=CeremonySettings)
    http: HttpSettings | None = None
    transports: dict[str, PluginSection] = {}
    backends: dict[str, PluginSection] = {}
    settlement: PluginSection | None = None
    source: str = DEFAULTS_SOURCE
