"""The plugin registers through the entry point, builds from config, and its embedded
simulator publishes the state file `arkrelay sim ln` reads."""

from __future__ import annotations

from pathlib import Path

import trio

from arkrelay_core.interfaces import LightningBackend, PluginContext
from arkrelay_core.plugins import load_plugins
from arkrelay_lnd.client import LndBackend
from arkrelay_lnd.settings import LndSettings, SimulatorSettings
from arkrelay_lnd.sim import STATE_FILE, read_state


def _context(data_dir: Path) -> PluginContext:
    def no_events(*_: object) -> object:
        raise AssertionError("the lightning backend never signs events")

    return PluginContext(
        network="regtest",
        data_dir=data_dir,
        listening_pubkeys=lambda: [],
        sign_event=no_events,
        instance_name="lightning",
    )


def test_lnd_is_an_installed_lightning_backend() -> None:
    plugin = load_plugins().get("lightning", "lnd")
    assert plugin.distribution == "arkrelay-lnd"
    assert plugin.spec.settings_type is LndSettings
    backend = plugin.spec.factory(LndSettings(), None)
    assert isinstance(backend, LndBackend) and isinstance(backend, LightningBackend)
    assert backend.simulator is not None  # no target: the simulated network


async def test_the_embedded_simulator_serves_and_publishes_its_state(tmp_path: Path) -> None:
    backend = LndBackend(LndSettings(), _context(tmp_path))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.serve)
            state = read_state(tmp_path)
            info = await backend.get_info()
            assert state.nodes["gateway"].pubkey == info.pubkey
            assert set(state.nodes) == {"gateway", "outside"}
            nursery.cancel_scope.cancel()
    assert not (tmp_path / STATE_FILE).exists()


def test_the_embedded_simulators_fee_floor_comes_from_the_settings(tmp_path: Path) -> None:
    settings = LndSettings(simulator=SimulatorSettings(fee_floor=4))
    backend = LndBackend(settings, _context(tmp_path))
    assert backend.simulator is not None
    assert backend.simulator.network.chain.fee_floor == 4
