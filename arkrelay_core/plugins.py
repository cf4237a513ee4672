"""The plugin host: discovers plugins through entry points and builds what config enables.

pluggy only discovers; the objects plugins return do the work. The manager is made by a
factory, never at import, so tests and two gateways in one process never share state.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec
import pluggy

from . import hookspecs
from .config import UnknownPluginError
from .errors import PluginError
from .interfaces import ROLES, IntentTypeSpec, PluginSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "InstalledPlugin",
    "LoadFailure",
    "PluginRegistry",
    "create_plugin_manager",
    "hookimpl",
    "load_plugins",
    "notify_observers",
    "one_by_one",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "arkrelay"
hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT_NAME)

_REGISTRATION_HOOKS = (
    "arkrelay_register_transports",
    "arkrelay_register_backends",
    "arkrelay_register_settlement_strategies",
)
_ROLES_BY_HOOK = {
    "arkrelay_register_transports": {"transport"},
    "arkrelay_register_backends": {"ark", "lightning", "assets"},
    "arkrelay_register_settlement_strategies": {"settlement"},
}


@dataclasses.dataclass(frozen=True)
class LoadFailure:
    """An installed plugin that could not be imported or registered."""

    entry_point: str
    distribution: str
    version: str
    error: str

    def describe(self) -> str:
        return (
            f"{self.distribution} {self.version} (entry point {self.entry_point!r}): {self.error}"
        )


@dataclasses.dataclass(frozen=True)
class InstalledPlugin:
    """One spec a loaded plugin registered, with where it came from."""

    spec: PluginSpec
    distribution: str
    distribution_version: str
    plugin_name: str


def create_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


class PluginRegistry:
    """What is installed, what failed, and how to resolve a config's plugin names."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        installed: Sequence[InstalledPlugin],
        intent_types: Sequence[IntentTypeSpec],
        failures: Sequence[LoadFailure],
    ) -> None:
        self.plugin_manager = pm
        self.installed = tuple(installed)
        self.intent_types = tuple(intent_types)
        self.failures = tuple(failures)
        self._by_key = {(p.spec.role, p.spec.name): p for p in self.installed}

    def names(self, role: str) -> list[str]:
        return sorted(name for (r, name) in self._by_key if r == role)

    def get(self, role: str, name: str) -> InstalledPlugin:
        """The plugin registered for (role, name).

        Raises UnknownPluginError when nothing by that name is installed; it names every
        plugin that failed to load, since the operator's plugin may be the broken one.
        """
        found = self._by_key.get((role, name))
        if found is not None:
            return found
        note = ""
        if self.failures:
            note = "failed to load: " + "; ".join(f.describe() for f in self.failures)
        raise UnknownPluginError(role, name, self.names(role), note)

    def settings_type(self, role: str, name: str) -> type[msgspec.Struct]:
        """The resolver ``arkrelay_core.config.load_config`` takes."""
        return self.get(role, name).spec.settings_type


def load_plugins(
    *,
    entry_points: Iterable[md.EntryPoint] | None = None,
    extra: Iterable[tuple[str, object]] = (),
) -> PluginRegistry:
    """Import every plugin of the ``arkrelay`` entry-point group and collect its specs.

    A plugin that raises on import, or returns malformed specs, becomes a LoadFailure
    naming its distribution and version; it does not stop the others from loading.
    ``extra`` registers in-process plugin objects (name, module-or-object) the same way.
    """
    pm = create_plugin_manager()
    eps = md.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
    failures: list[LoadFailure] = []
    origin: dict[str, tuple[str, str]] = {}

    for ep in eps:
        dist_name, dist_version = _distribution_of(ep)
        try:
            plugin = ep.load()
        # A third-party import can raise anything; we record it against the distribution
        # and refuse to run it, rather than crash discovery for every other plugin.
        except Exception as exc:  # noqa: BLE001
            failures.append(LoadFailure(ep.name, dist_name, dist_version, _one_line(exc)))
            continue
        if not _register(pm, ep.name, plugin, dist_name, dist_version, failures):
            continue
        origin[ep.name] = (dist_name, dist_version)

    for name, plugin in extra:
        if _register(pm, name, plugin, name, "local", failures):
            origin[name] = (name, "local")

    installed, intent_types = _collect_specs(pm, origin, failures)
    return PluginRegistry(pm, installed, intent_types, failures)


def _register(
    pm: pluggy.PluginManager,
    name: str,
    plugin: object,
    dist: str,
    version: str,
    failures: list[LoadFailure],
) -> bool:
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        failures.append(LoadFailure(name, dist, version, _one_line(exc)))
        return False
    return True


def _collect_specs(
    pm: pluggy.PluginManager,
    origin: dict[str, tuple[str, str]],
    failures: list[LoadFailure],
) -> tuple[list[InstalledPlugin], list[IntentTypeSpec]]:
    """Call each plugin's registration hooks one by one, so every spec keeps its origin."""
    installed: list[InstalledPlugin] = []
    intent_types: list[IntentTypeSpec] = []
    broken: set[str] = set()
    seen: dict[tuple[str, str], str] = {}

    for hook_name in (*_REGISTRATION_HOOKS, "arkrelay_register_intent_types"):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            name = impl.plugin_name
            if name in broken:
                continue
            dist, version = origin.get(name, (name, "?"))
            try:
                results = impl.function() or []
                if hook_name == "arkrelay_register_intent_types":
                    intent_types.extend(_check_intent_type(r) for r in results)
                    continue
                for spec in results:
                    _check_spec(spec, _ROLES_BY_HOOK[hook_name])
                    key = (spec.role, spec.name)
                    if key in seen:
                        raise PluginError(
                            f"{spec.role} plugin {spec.name!r} is already registered by {seen[key]}"
                        )
                    seen[key] = dist
                    installed.append(InstalledPlugin(spec, dist, version, name))
            # As above: plugin code may raise anything; it is reported, never run.
            except Exception as exc:  # noqa: BLE001
                failures.append(LoadFailure(name, dist, version, _one_line(exc)))
                broken.add(name)
                pm.unregister(name=name)

    installed = [
        p for p in installed if p.distribution not in {origin.get(b, (b,))[0] for b in broken}
    ]
    return installed, intent_types


def _check_spec(spec: Any, roles: set[str]) -> None:
    if not isinstance(spec, PluginSpec):
        raise PluginError(f"registration returned {type(spec).__name__}, not a PluginSpec")
    if spec.role not in ROLES or spec.role not in roles:
        raise PluginError(
            f"plugin {spec.name!r} has role {spec.role!r}, expected one of {sorted(roles)}"
        )
    if not (
        isinstance(spec.settings_type, type) and issubclass(spec.settings_type, msgspec.Struct)
    ):
        raise PluginError(f"plugin {spec.name!r}: settings_type must be a msgspec.Struct subclass")
    if not callable(spec.factory):
        raise PluginError(f"plugin {spec.name!r}: factory is not callable")


def _check_intent_type(spec: Any) -> IntentTypeSpec:
    if not isinstance(spec, IntentTypeSpec):
        raise PluginError(f"registration returned {type(spec).__name__}, not an IntentTypeSpec")
    return spec


def notify_observers(pm: pluggy.PluginManager, hook: pluggy.HookCaller, /, **kwargs: Any) -> None:
    """Call an observer hook: an observer that raises is logged, never propagated, and the
    other observers are still called."""
    for plugin_name, call in one_by_one(pm, hook):
        try:
            call(**kwargs)
        # Observers are third-party code the gateway must survive (DESIGN.md §3).
        except Exception:
            log.exception("observer %s.%s raised", plugin_name, hook.name)


def one_by_one(
    pm: pluggy.PluginManager, hook: pluggy.HookCaller
) -> Iterator[tuple[str, pluggy.HookCaller]]:
    """Each plugin implementing ``hook``, with a caller that reaches its implementation alone.

    pluggy runs every implementation in one call and stops at the first exception; these
    callers let the host survive one plugin's failure without bypassing pluggy: each is a
    subset caller that leaves the other plugins out, so pluggy's argument matching still
    applies (an implementation may take only the arguments it wants) and wrappers wrap
    each call. The order is pluggy's: last registered first, ``tryfirst``/``trylast``
    honoured.
    """
    plain = [impl for impl in hook.get_hookimpls() if not (impl.wrapper or impl.hookwrapper)]
    for impl in reversed(plain):
        others = [other.plugin for other in plain if other is not impl]
        yield impl.plugin_name, pm.subset_hook_caller(hook.name, others)


def _distribution_of(ep: md.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return ep.value.split(":")[0], "?"
    return dist.metadata["Name"], dist.version


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
