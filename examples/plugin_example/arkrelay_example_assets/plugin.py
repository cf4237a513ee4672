"""What the ``arkrelay`` entry point loads: the registration hook.

Importing this module must stay cheap and side-effect free (``arkrelay plugins`` imports
every installed plugin), so the backend class is imported only when the gateway builds it.
"""

from __future__ import annotations

from typing import Any

from arkrelay_core.interfaces import PluginContext, PluginSpec
from arkrelay_core.plugins import hookimpl

from . import __version__
from .settings import ExampleAssetsSettings

__all__ = ["arkrelay_register_backends"]


def _build(settings: ExampleAssetsSettings, context: PluginContext) -> Any:
    from .backend import ExampleAssetBackend

    return ExampleAssetBackend(settings, context)


@hookimpl
def arkrelay_register_backends() -> list[PluginSpec]:
    return [
        PluginSpec(
            name="example-assets",
            version=__version__,
            role="assets",
            settings_type=ExampleAssetsSettings,
            factory=_build,
            description="an in-memory asset issuer with its own chain (an example plugin)",
        )
    ]
