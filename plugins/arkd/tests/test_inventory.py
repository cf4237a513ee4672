"""The gateway's inventory: levels, alerts, replenishment through the simulator, sending."""

from __future__ import annotations

import pytest
import trio

from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.inventory import BackendReplenisher, Inventory, InventoryAlert
from arkrelay_arkd.settings import ArkdSettings, InventorySettings
from arkrelay_core.config import Duration
from arkrelay_core.errors import InsufficientBalance
from arkrelay_core.interfaces import TxOutputSpec
from arkrelay_core.nostr import bip340

from .conftest import Key

# The monitor checks once at start; a later tick would top the inventory up again between
# a send and the assertions on the level that send left.
LEVELS = InventorySettings(critical=1_000, warning=5_000, target=20_000, check_every=Duration(3600))


async def test_monitor_alerts_on_crossings_and_replenishes(nursery: trio.Nursery) -> None:
    backend = ArkdBackend(ArkdSettings())  # owns a simulator
    await nursery.start(backend.serve)
    gateway = Key()
    alerts: list[InventoryAlert] = []
    inventory = Inventory(
        backend,
        gateway.pub,
        LEVELS,
        replenisher=BackendReplenisher(backend),
        on_alert=alerts.append,
    )
    with trio.fail_after(10):
        await nursery.start(inventory.monitor)
    # Empty -> critical (alert), topped up to target -> ok (alert).
    assert [(a.previous, a.level) for a in alerts] == [("ok", "critical"), ("critical", "ok")]
    assert inventory.balance == 20_000 and inventory.replenished == 1

    bob = Key()
    signer = lambda h: bip340.schnorr_sign(gateway.secret, h)  # noqa: E731
    done = await inventory.send([TxOutputSpec(bob.pub, 16_000)], signer)
    assert [(v.owner, v.amount) for v in await backend.list_vtxos(bob.pub)] == [(bob.pub, 16_000)]
    assert {(v.owner, v.amount) for v in done.created} == {(bob.pub, 16_000), (gateway.pub, 4_000)}
    assert inventory.level == "warning" and alerts[-1].level == "warning"
    view = inventory.view()
    assert (view.balance, view.vtxo_count, view.sends) == (4_000, 1, 1)

    with pytest.raises(InsufficientBalance):
        await inventory.send([TxOutputSpec(bob.pub, 3_900)], signer)  # change 100 < dust
