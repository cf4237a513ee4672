"""The optional capabilities (``arkrelay_core.interfaces.capabilities``) an instance claims,
checked for what ``isinstance`` cannot see: that each member holds what its Protocol says.

``check_capabilities(instance)`` checks every capability the instance passes
``isinstance`` for and returns their names; each backend suite's ``info`` check runs it,
and ``test_capabilities.py`` runs it on the reference transports and backends.
"""

from __future__ import annotations

from collections.abc import Mapping

from arkrelay_core.config import Duration
from arkrelay_core.interfaces import (
    DaemonTarget,
    Inventory,
    InventoryKeeper,
    Listener,
    RelayReader,
    Simulatable,
    Vtxo,
)

__all__ = ["check_capabilities"]

LEVELS = {"ok", "warning", "critical"}


def check_capabilities(instance: object) -> list[str]:
    """Assert each claimed capability is honoured; the names of those claimed."""
    claimed = []
    if isinstance(instance, Listener):
        claimed.append("Listener")
        url = instance.url
        assert isinstance(url, str) and url.startswith(("ws://", "wss://")), url
    if isinstance(instance, RelayReader):
        claimed.append("RelayReader")
        relays = list(instance.relays)
        assert relays and all(isinstance(r, str) for r in relays), relays
        assert all(r.startswith(("ws://", "wss://")) for r in relays), relays
        assert len(set(relays)) == len(relays), f"a relay listed twice: {relays}"
    if isinstance(instance, DaemonTarget):
        claimed.append("DaemonTarget")
        host, _, port = instance.target.rpartition(":")
        assert host and port.isdigit(), f"target {instance.target!r} is not host:port"
    if isinstance(instance, Simulatable):
        claimed.append("Simulatable")
        # Any object, or None for a real daemon: reading it must simply work.
        _ = instance.simulator
    if isinstance(instance, InventoryKeeper):
        claimed.append("InventoryKeeper")
        if instance.inventory is not None:
            _check_inventory(instance.inventory)
    return claimed


def _check_inventory(inventory: object) -> None:
    assert isinstance(inventory, Inventory), f"{type(inventory).__name__} is no Inventory"
    levels = inventory.levels
    assert all(isinstance(v, int) for v in (levels.critical, levels.warning, levels.target))
    assert levels.critical <= levels.warning <= levels.target
    assert isinstance(levels.check_every, Duration)
    assert len(bytes.fromhex(inventory.owner)) == 32
    assert inventory.level in LEVELS
    assert isinstance(inventory.replenished, int) and inventory.replenished >= 0
    assert isinstance(inventory.statistics(), Mapping)
    view = inventory.view()
    assert (view.owner, view.balance, view.level) == (
        inventory.owner,
        inventory.balance,
        inventory.level,
    )
    assert view.levels == levels
    assert view.vtxo_count == len(view.vtxos)
    assert all(isinstance(v, Vtxo) and v.owner == view.owner for v in view.vtxos)
    assert view.balance == sum(v.amount for v in view.vtxos)
    assert view.refreshed_at is None or isinstance(view.refreshed_at, float)
    assert all(isinstance(n, int) for n in (view.alerts, view.replenished, view.sends))
