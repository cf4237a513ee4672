"""The reference plugins' optional capabilities hold what their Protocols declare, and the
check catches an instance whose member does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from capabilities import check_capabilities

from arkrelay_core.config import Duration, HostPort
from arkrelay_core.interfaces import PluginContext, Simulatable
from arkrelay_core.nostr import bip340
from arkrelay_core.plugins import load_plugins

#: (role, plugin, settings) -> the capabilities the reference instance claims. The backends
#: are pointed at a daemon: a simulated one knows its target only once serving, and the
#: suites' ``info`` checks run ``check_capabilities`` on served, simulated backends.
REFERENCE = [
    ("transport", "endpoint", {}, ["Listener"]),
    (
        "transport",
        "relays",
        {"relays": ["ws://127.0.0.1:9", "ws://127.0.0.1:10", "ws://127.0.0.1:9"]},
        ["RelayReader"],
    ),
    (
        "ark",
        "arkd",
        {"target": "127.0.0.1:7070"},
        ["DaemonTarget", "Simulatable", "InventoryKeeper"],
    ),
    ("lightning", "lnd", {"target": "127.0.0.1:10009"}, ["DaemonTarget", "Simulatable"]),
    ("assets", "tapd", {"target": "127.0.0.1:10029"}, ["DaemonTarget", "Simulatable"]),
]


def _context(data_dir: Path, instance: str) -> PluginContext:
    service = bip340.xonly_public_key(bip340.generate_secret_key()).hex()

    def no_events(*_: Any) -> Any:
        raise RuntimeError("not signing in this test")

    return PluginContext(
        network="regtest",
        data_dir=data_dir,
        listening_pubkeys=lambda: [service],
        sign_event=no_events,
        instance_name=instance,
    )


@pytest.mark.parametrize(("role", "name", "settings", "claims"), REFERENCE)
def test_reference_instances_honour_what_they_claim(
    tmp_path: Path, role: str, name: str, settings: dict[str, Any], claims: list[str]
) -> None:
    spec = load_plugins().get(role, name).spec
    # Built only: a factory does no I/O, so nothing listens or connects here.
    if "target" in settings:
        settings = {**settings, "target": HostPort.parse(settings["target"])}
    instance = spec.factory(msgspec.convert(settings, spec.settings_type), _context(tmp_path, name))
    assert check_capabilities(instance) == claims
    if isinstance(instance, Simulatable):
        assert instance.simulator is None  # a daemon is configured


class _Claims:
    features = frozenset()

    def __init__(self, **members: Any) -> None:
        self.__dict__.update(members)


class _Levels:
    critical, warning, target = 50, 10, 100  # warning below critical
    check_every = Duration(60)


class _InventoryWithBadLevels:
    owner, balance, level, levels, replenished = "ab" * 32, 0, "ok", _Levels(), 0

    def view(self) -> Any:
        raise AssertionError("not reached: the levels are checked first")

    async def refresh(self) -> str:
        return "ok"

    async def check(self) -> str:
        return "ok"

    def statistics(self) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(
    "instance",
    [
        _Claims(url="127.0.0.1:7447"),
        _Claims(relays=["wss://a.example", "wss://a.example"]),
        _Claims(target="localhost"),
        _Claims(inventory=object()),
        _Claims(inventory=_InventoryWithBadLevels()),
    ],
    ids=["url-no-scheme", "relay-twice", "target-no-port", "not-an-inventory", "bad-levels"],
)
def test_a_capability_not_honoured_is_caught(instance: object) -> None:
    with pytest.raises(AssertionError) as caught:
        check_capabilities(instance)
    assert "not reached" not in str(caught.value)


def test_an_instance_claiming_nothing_passes() -> None:
    assert check_capabilities(_Claims(name="plain")) == []
