"""The plugin registers, builds from config, and its embedded simulator joins the embedded
lnd simulator's network, so the lnd backend's invoices and tapd's are one network's."""

from __future__ import annotations

from pathlib import Path

import trio
from arkrelay_lnd.client import LndBackend
from arkrelay_lnd.settings import LndSettings

from arkrelay_core.interfaces import AssetBackend, InvoiceState, PluginContext
from arkrelay_core.plugins import load_plugins
from arkrelay_tapd.client import TapdBackend
from arkrelay_tapd.settings import TapdSettings
from arkrelay_tapd.sim import STATE_FILE


def _context(data_dir: Path) -> PluginContext:
    def no_events(*_: object) -> object:
        raise AssertionError("the asset backend never signs events")

    return PluginContext("regtest", data_dir, lambda: [], no_events, "assets")


def test_tapd_is_an_installed_asset_backend() -> None:
    plugin = load_plugins().get("assets", "tapd")
    assert plugin.distribution == "arkrelay-tapd"
    backend = plugin.spec.factory(TapdSettings(), None)
    assert isinstance(backend, TapdBackend) and isinstance(backend, AssetBackend)
    assert backend.features == frozenset({"asset_channels"})  # the simulator has them
    real = plugin.spec.factory(TapdSettings(target="127.0.0.1:10029"), None)  # type: ignore[arg-type]
    assert real.features == frozenset()


async def test_embedded_tapd_and_lnd_share_one_network(tmp_path: Path) -> None:
    context = _context(tmp_path)
    lnd = LndBackend(LndSettings(), context)
    tapd = TapdBackend(TapdSettings(), context)
    assert lnd.simulator is not None and tapd.simulator is not None
    assert lnd.simulator.network is tapd.simulator.network
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(lnd.serve)
            await nursery.start(tapd.serve)
            assert (tmp_path / STATE_FILE).exists()
            # The owned simulator starts with the gBTC reserve minted and confirmed.
            gbtc = tapd.reserve
            assert gbtc is not None
            balances = {b.asset_id: b.balance for b in await tapd.list_balances()}
            assert balances[gbtc.asset_id] == TapdSettings().simulator_gbtc_reserve
            invoice = await tapd.create_asset_invoice(gbtc.asset_id, 25, memo="", expiry=60)
            # The same invoice, seen through the gateway's lnd.
            looked = await lnd.lookup_invoice(invoice.payment_hash)
            assert (looked.state, looked.amount_msat) == (InvoiceState.OPEN, 25_000)
            assert (await tapd.get_info()).lnd_pubkey == (await lnd.get_info()).pubkey
            nursery.cancel_scope.cancel()
