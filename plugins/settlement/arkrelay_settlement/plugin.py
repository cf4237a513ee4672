"""Registers the settlement strategies with the ArkRelay plugin host."""

from __future__ import annotations

from typing import Any

from arkrelay_core.interfaces import PluginContext, PluginSpec
from arkrelay_core.plugins import hookimpl

from . import __version__
from .settings import AnchorSettings, ArkBatchesSettings

__all__ = ["arkrelay_register_settlement_strategies"]


def _anchor(settings: AnchorSettings, context: PluginContext) -> Any:
    from .anchor import AnchorStrategy

    return AnchorStrategy(settings)


def _ark_batches(settings: ArkBatchesSettings, context: PluginContext) -> Any:
    from .batches import ArkBatchesStrategy

    return ArkBatchesStrategy(settings)


@hookimpl
def arkrelay_register_settlement_strategies() -> list[PluginSpec]:
    return [
        PluginSpec(
            name="anchor",
            version=__version__,
            role="settlement",
            settings_type=AnchorSettings,
            factory=_anchor,
            description="each period's merkle root in an OP_RETURN through the Lightning "
            "backend's wallet, fee-bumped until confirmed, then a 31342",
        ),
        PluginSpec(
            name="ark-batches",
            version=__version__,
            role="settlement",
            settings_type=ArkBatchesSettings,
            factory=_ark_batches,
            description="a 31342 for each Ark commitment tx that settles our transactions",
        ),
    ]
