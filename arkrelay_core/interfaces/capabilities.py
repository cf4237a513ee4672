"""Optional capabilities: what some plugin instances offer beyond their role's Protocol.

A role's Protocol (``Transport``, ``ArkBackend``...) is what every plugin of that role
must implement. The Protocols here are extras a plugin may offer; the core asks for one
with ``isinstance`` (each is runtime-checkable) and then uses only what the Protocol
declares, never an attribute looked up by name. Where a capability's value may be absent
(``simulator``, ``inventory``), ``None`` says so. ``contract-tests/capabilities.py`` checks
that an instance claiming a capability really honours it, value types included, since
``isinstance`` on a Protocol only sees that the attributes exist.

Capabilities that are calls the core makes (``board``, asset channels) stay in the role's
Protocol and are announced through ``features``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .ark import Vtxo

if TYPE_CHECKING:
    from ..config import Duration

__all__ = [
    "DaemonTarget",
    "Inventory",
    "InventoryKeeper",
    "InventoryLevel",
    "InventoryLevels",
    "InventoryView",
    "Listener",
    "RelayReader",
    "Simulatable",
]

InventoryLevel = Literal["ok", "warning", "critical"]


@runtime_checkable
class Listener(Protocol):
    """A transport wallets connect to: the gateway's own relay endpoint."""

    @property
    def url(self) -> str:
        """Where it listens (``ws://host:port``): the port really bound once serving."""
        ...


@runtime_checkable
class RelayReader(Protocol):
    """A transport that reads from and publishes to outside Nostr relays."""

    @property
    def relays(self) -> Sequence[str]:
        """The relay URLs it uses, each once, in the configured order."""
        ...


@runtime_checkable
class DaemonTarget(Protocol):
    """A backend that talks to a daemon at an address it can name."""

    @property
    def target(self) -> str:
        """``host:port`` of the daemon (its simulator's while simulated). Read it once the
        instance serves: a simulator binds its port then, and may raise before."""
        ...


@runtime_checkable
class Simulatable(Protocol):
    """A backend that can run on a simulator of its daemon instead of the real one."""

    @property
    def simulator(self) -> object | None:
        """The simulator it runs on, None when it talks to a real daemon. The core only
        tells the operator (no real money moves); what the object offers is the plugin's."""
        ...


class InventoryLevels(Protocol):
    """The configured levels, in sats: ``critical <= warning <= target``."""

    @property
    def critical(self) -> int: ...

    @property
    def warning(self) -> int: ...

    @property
    def target(self) -> int: ...

    @property
    def check_every(self) -> Duration:
        """How often the level is read."""
        ...


class InventoryView(Protocol):
    """A snapshot of the inventory, as the admin API shows it."""

    @property
    def owner(self) -> str: ...

    @property
    def balance(self) -> int: ...

    @property
    def vtxo_count(self) -> int: ...

    @property
    def level(self) -> InventoryLevel: ...

    @property
    def levels(self) -> InventoryLevels: ...

    @property
    def vtxos(self) -> Sequence[Vtxo]: ...

    @property
    def refreshed_at(self) -> float | None:
        """When last read from the backend, on trio's clock; None if never."""
        ...

    @property
    def alerts(self) -> int: ...

    @property
    def replenished(self) -> int: ...

    @property
    def sends(self) -> int: ...


@runtime_checkable
class Inventory(Protocol):
    """The gateway's own VTXOs (owned by its service key) against their levels."""

    @property
    def owner(self) -> str: ...

    @property
    def balance(self) -> int: ...

    @property
    def level(self) -> InventoryLevel: ...

    @property
    def levels(self) -> InventoryLevels: ...

    @property
    def replenished(self) -> int:
        """How many times it was topped up since start."""
        ...

    def view(self) -> InventoryView: ...

    async def refresh(self) -> InventoryLevel:
        """Read the VTXOs from the backend again (raises ArkRelayError subclasses)."""
        ...

    async def check(self) -> InventoryLevel:
        """Refresh, alert on a level crossing, top up below warning when it can."""
        ...

    def statistics(self) -> Mapping[str, Any]: ...


@runtime_checkable
class InventoryKeeper(Protocol):
    """An ark backend that keeps the gateway's own VTXOs (Lightning lift liquidity)."""

    @property
    def inventory(self) -> Inventory | None:
        """None when built without a service key (no owner to keep VTXOs for)."""
        ...
