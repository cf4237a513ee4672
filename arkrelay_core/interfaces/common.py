"""What every plugin gets and gives: its registration record and its build context."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec
import trio

__all__ = [
    "ROLES",
    "Component",
    "PluginContext",
    "PluginSpec",
    "Role",
    "SignEvent",
]

Role = Literal["transport", "ark", "lightning", "assets", "settlement"]
ROLES: tuple[Role, ...] = ("transport", "ark", "lightning", "assets", "settlement")

#: Signs an event with the gateway's current service key: (kind, content, tags) -> Event.
#: Plugins never see the secret key itself.
SignEvent = Callable[[int, str, Sequence[Sequence[str]]], Any]


@dataclasses.dataclass(frozen=True)
class PluginContext:
    """Everything the gateway lends a plugin instance when it builds it.

    Plugins must take what they need from here (never from the environment or global
    settings), so the same plugin can run twice in one process with different settings.
    """

    network: str
    data_dir: Path
    #: Pubkeys (hex) the gateway answers on: the current service key and any key still in
    #: its rotation grace period. A callable because rotation changes it while running.
    listening_pubkeys: Callable[[], Sequence[str]]
    sign_event: SignEvent
    #: The instance's name in the config (the `[transport.<name>]` key, or the role).
    instance_name: str = ""


@dataclasses.dataclass(frozen=True)
class PluginSpec:
    """A plugin's answer to a registration hook: what it can build, and how.

    :param name: what the operator writes in the config (``plugin = "arkd"``).
    :param version: the plugin's own version (usually its distribution's).
    :param role: transport, ark, lightning, assets or settlement.
    :param settings_type: msgspec Struct the plugin's config section decodes into; make it
        ``forbid_unknown_fields=True`` so a typo is an error at start-up.
    :param factory: ``factory(settings, context) -> instance``; must not do I/O (the
        instance connects in ``serve``).
    :param description: one line for ``arkrelay plugins``.
    """

    name: str
    version: str
    role: Role
    settings_type: type[msgspec.Struct]
    factory: Callable[[Any, PluginContext], Any]
    description: str = ""


@runtime_checkable
class Component(Protocol):
    """Shared shape of every plugin instance.

    ``serve`` runs for the life of the gateway under its root nursery, follows trio's
    start protocol (``task_status.started()`` once usable) and returns only when
    cancelled. ``features`` lists optional capabilities as data, so the core can ask
    instead of catching "not supported" errors. ``statistics()`` is cheap and sync.
    """

    features: frozenset[str]

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...

    def statistics(self) -> Mapping[str, Any]: ...
