"""What ``/admin/*`` answers: msgspec models, also the source of the OpenAPI schemas.

Plugin statistics stay free-form (``dict[str, Any]``): each plugin reports its own
counters, and the admin API passes them through rather than freezing one plugin's shape.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..interfaces import Vtxo
from .models import Page, SessionOut

__all__ = [
    "BreakerOut",
    "CancelOut",
    "ComponentOut",
    "InventoryLevels",
    "InventoryOut",
    "KeyOut",
    "KeysOut",
    "LoadFailureOut",
    "OutboxItem",
    "OutboxOut",
    "PluginOut",
    "PluginsOut",
    "RelaysOut",
    "ReplenishOut",
    "SessionPage",
    "SettlementTriggered",
    "TransportOut",
]


class PluginOut(msgspec.Struct):
    """One installed plugin spec (a distribution may register several)."""

    name: str
    role: str
    distribution: str
    version: str
    description: str
    #: Whether the config runs it (``instances`` names where).
    enabled: bool
    #: Component names such as ``backend.ark`` or ``transport.endpoint``.
    instances: list[str]


class BreakerOut(msgspec.Struct):
    #: "closed", "open" or "half_open".
    state: str
    consecutive_failures: int
    times_opened: int


class ComponentOut(msgspec.Struct):
    """An enabled plugin instance and what it reports about itself."""

    name: str
    plugin: str
    role: str
    #: The circuit breaker of its calls to a daemon, for plugins that have one.
    breaker: BreakerOut | None
    statistics: dict[str, Any]


class LoadFailureOut(msgspec.Struct):
    """An installed plugin that could not be imported or registered."""

    entry_point: str
    distribution: str
    version: str
    error: str


class PluginsOut(msgspec.Struct):
    plugins: list[PluginOut]
    components: list[ComponentOut]
    failures: list[LoadFailureOut]


class TransportOut(msgspec.Struct):
    name: str
    plugin: str
    statistics: dict[str, Any]


class RelaysOut(msgspec.Struct):
    #: Inbound events taken in since start (new ones), and repeats of events already seen.
    inbound: int
    duplicates: int
    #: Times a transport died and was started again.
    transport_restarts: int
    transports: list[TransportOut]


class SessionPage(Page):
    items: list[SessionOut]


class CancelOut(msgspec.Struct):
    """The cancelled session; its author was sent a 31341 with code 3004."""

    session: SessionOut
    #: Other legs of its batch, ended with 3005 because this one was cancelled.
    batch_legs_failed: list[str]


class SettlementTriggered(msgspec.Struct):
    #: The settlement the trigger closed, or null when the period held nothing to settle.
    settlement_id: str | None
    detail: str


class InventoryLevels(msgspec.Struct):
    critical: int
    warning: int
    target: int
    check_every_seconds: float


class InventoryOut(msgspec.Struct):
    """The gateway's own VTXOs (liquidity for Lightning lifts)."""

    owner: str
    balance: int
    vtxo_count: int
    #: "ok", "warning" or "critical" against ``levels``.
    level: str
    levels: InventoryLevels
    vtxos: list[Vtxo]
    #: Seconds since the inventory was last read from the Ark backend (null: never).
    refreshed_seconds_ago: float | None
    alerts: int
    replenished: int
    sends: int


class ReplenishOut(msgspec.Struct):
    #: Whether funds were added (only below the warning level, and only by a backend
    #: that can board on request).
    replenished: bool
    balance_before: int
    level_before: str
    detail: str
    inventory: InventoryOut


class KeyOut(msgspec.Struct):
    """One service key in the key file: public facts only."""

    pubkey: str
    npub: str
    #: "current", "retiring" (rotated out, still listened on) or "retired".
    state: str
    created_at: int
    #: When a rotated-out key stops being listened on (null for the current key).
    retire_at: int | None
    #: Whether this running gateway signs with it / reads messages addressed to it.
    signing: bool
    listening: bool


class KeysOut(msgspec.Struct):
    service_pubkey: str
    npub: str
    #: The dev passphrase protects the key (never on mainnet): not for real money.
    dev_key: bool
    key_file: str
    keys: list[KeyOut]
    #: The key file's current key is not the one this process signs with: a rotation
    #: takes effect at the next restart.
    restart_pending: bool


class OutboxItem(msgspec.Struct):
    event_id: str
    kind: int
    created_at: int
    attempts: int
    next_attempt_at: int
    accepted_relays: list[str]
    last_error: str | None


class OutboxOut(msgspec.Struct):
    """Signed events not yet accepted by enough relays."""

    pending: int
    #: Pending events that failed at least once.
    failing: int
    oldest_created_at: int | None
    oldest_age_seconds: int | None
    #: The most attempts any pending event has had.
    max_attempts: int
    #: The oldest pending events, oldest first.
    oldest: list[OutboxItem]
    #: The publisher's counters since start, with its last error.
    publisher: dict[str, Any]
