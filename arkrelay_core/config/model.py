"""The validated shape of an operator's config file, and the errors loading it raises."""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from .values import Duration, Secret

__all__ = [
    "BACKEND_ROLES",
    "DATABASE_SCHEMES",
    "DEFAULTS_SOURCE",
    "DEFAULT_DATA_DIR",
    "MIN_ADMIN_KEY_LENGTH",
    "NETWORKS",
    "PLUGIN_ROLES",
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

    network: Network = "regtest"
    data_dir: Path = DEFAULT_DATA_DIR
    database: str = default_database(DEFAULT_DATA_DIR)
    key_file: Path = DEFAULT_DATA_DIR / "gateway.key"
    event_window: Duration = Duration(3600)
    admin_key: Secret | None = None


class OutboxSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[outbox]`` table: how hard the gateway tries to get its events out."""

    #: Relays (over all transports) that must accept an event before it counts as sent.
    min_accepts: Annotated[int, msgspec.Meta(ge=1)] = 1
    retry_initial: Duration = Duration(2)
    retry_max: Duration = Duration(300)
    #: Events published concurrently.
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=256)] = 16


class PluginSection(msgspec.Struct, frozen=True):
    """One configured plugin instance: its name and its decoded settings Struct."""

    plugin: str
    settings: msgspec.Struct


class Config(msgspec.Struct, frozen=True):
    """The whole validated config. ``backends`` is keyed by role (ark, lightning, assets)."""

    gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)
    outbox: OutboxSettings = msgspec.field(default_factory=OutboxSettings)
    transports: dict[str, PluginSection] = {}
    backends: dict[str, PluginSection] = {}
    settlement: PluginSection | None = None
    source: str = DEFAULTS_SOURCE
