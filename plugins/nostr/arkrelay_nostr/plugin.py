"""Registers the two transports with the ArkRelay plugin host."""

from __future__ import annotations

from typing import Any

from arkrelay_core.interfaces import PluginContext, PluginSpec
from arkrelay_core.plugins import hookimpl

from . import __version__
from .settings import EndpointSettings, RelaysSettings

__all__ = ["arkrelay_register_transports"]


def _relays(settings: RelaysSettings, context: PluginContext) -> Any:
    from .relays import RelayPoolTransport

    return RelayPoolTransport(settings, context)


def _endpoint(settings: EndpointSettings, context: PluginContext) -> Any:
    from .endpoint import EndpointTransport

    return EndpointTransport(settings, context)


@hookimpl
def arkrelay_register_transports() -> list[PluginSpec]:
    return [
        PluginSpec(
            name="relays",
            version=__version__,
            role="transport",
            settings_type=RelaysSettings,
            factory=_relays,
            description="subscribe to and publish through a pool of external Nostr relays",
        ),
        PluginSpec(
            name="endpoint",
            version=__version__,
            role="transport",
            settings_type=EndpointSettings,
            factory=_endpoint,
            description="the gateway as a NIP-01 relay wallets connect to (ws://127.0.0.1:7447)",
        ),
    ]
