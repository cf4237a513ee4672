"""Public surfaces are curated: what each package exports is exactly what we mean to."""

import importlib

import pytest

PACKAGES = [
    "arkrelay_core.protocol",
    "arkrelay_core.interfaces",
    "arkrelay_core.errors",
    "arkrelay_core.plugins",
    "arkrelay_core.hookspecs",
    "arkrelay_core.ceremony",
    "arkrelay_core.grpcutil",
    "arkrelay_core.bitcoin",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist_and_nothing_public_is_unlisted(name):
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == []


def test_interfaces_export_exactly_the_plugin_contract():
    import arkrelay_core.interfaces as interfaces

    protocols = {
        n for n in interfaces.__all__ if getattr(getattr(interfaces, n), "_is_protocol", False)
    }
    assert protocols == {
        "Transport",
        "ArkBackend",
        "LightningBackend",
        "AssetBackend",
        "SettlementStrategy",
        "SettlementHost",
        "IntentHandler",
        "Component",
        # Read-only views observers get, and the optional capabilities.
        "SessionView",
        "GatewayView",
        "Listener",
        "RelayReader",
        "DaemonTarget",
        "Simulatable",
        "InventoryKeeper",
        "Inventory",
        "InventoryView",
        "InventoryLevels",
    }


def test_hookspecs_are_all_prefixed_and_documented():
    import inspect

    from arkrelay_core import hookspecs
    from arkrelay_core.plugins import create_plugin_manager

    pm = create_plugin_manager()
    names = [n for n in dir(pm.hook) if not n.startswith("_")]
    assert sorted(names) == sorted(
        [
            "arkrelay_register_transports",
            "arkrelay_register_backends",
            "arkrelay_register_settlement_strategies",
            "arkrelay_register_intent_types",
            "arkrelay_register_commands",
            "arkrelay_register_sim_commands",
            "arkrelay_session_transition",
            "arkrelay_event_published",
            "arkrelay_intent_received",
            "arkrelay_startup",
            "arkrelay_shutdown",
        ]
    )
    for name in names:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and len(doc) > 40, f"{name} needs a real docstring"
