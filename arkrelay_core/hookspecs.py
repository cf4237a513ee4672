"""Every hook a plugin may implement.

Three kinds of hook:

* **Registration** hooks return :class:`~arkrelay_core.interfaces.PluginSpec` (or
  :class:`~arkrelay_core.interfaces.IntentTypeSpec`) records: what the plugin *can* build.
  The operator's config decides what *is* built; installing a plugin never activates it.
* **Observer** hooks are told about things that happened, after they were committed.
  They must return quickly and must not raise: the gateway logs an observer's exception
  and carries on, it never lets one break a session nor keeps the other observers from
  being told.
* **Command** hooks add ``arkrelay`` subcommands; they run only in the command line.

An implementation may take fewer arguments than its spec names (pluggy passes the ones it
asks for, by name): ``def arkrelay_session_transition(session)`` is a valid observer.

Implement a hook with ``arkrelay_core.plugins.hookimpl`` and expose the module (or
object) through the ``arkrelay`` entry-point group::

    [project.entry-points.arkrelay]
    mybackend = "arkrelay_mybackend.plugin"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .interfaces import GatewayView, IntentTypeSpec, PluginSpec, SessionView
    from .nostr import Event
    from .protocol import Intent, SessionState

__all__ = ["PROJECT_NAME", "hookspec"]

PROJECT_NAME = "arkrelay"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# ----------------------------------------------------------------------------- registration


@hookspec
def arkrelay_register_transports() -> list[PluginSpec]:
    """Return the transports this plugin can build.

    Each spec has ``role="transport"``; its factory returns a
    :class:`~arkrelay_core.interfaces.Transport`. The operator enables one with a
    ``[transport.<name>]`` table.

    :return: a list of PluginSpec (empty if none). Results of all plugins are combined.
    """


@hookspec
def arkrelay_register_backends() -> list[PluginSpec]:
    """Return the daemon backends this plugin can build.

    ``role`` is ``"ark"`` (factory returns an ArkBackend), ``"lightning"``
    (LightningBackend) or ``"assets"`` (AssetBackend). Enabled by
    ``[backend.<role>] plugin = "<name>"``.

    :return: a list of PluginSpec. Results of all plugins are combined.
    """


@hookspec
def arkrelay_register_settlement_strategies() -> list[PluginSpec]:
    """Return the L1 settlement strategies this plugin can build (``role="settlement"``).

    Enabled by ``[settlement] plugin = "<name>"``; at most one runs.

    :return: a list of PluginSpec. Results of all plugins are combined.
    """


@hookspec
def arkrelay_register_intent_types() -> list[IntentTypeSpec]:
    """Return action types this plugin adds to the 31510 intent vocabulary.

    A type must not shadow a built-in one (``ark:transfer``, ``vtxo:split``,
    ``lightning:land``, ``ark:swap_leg``) or another plugin's; the gateway refuses to
    start if two specs claim one name.

    :return: a list of IntentTypeSpec. Results of all plugins are combined.
    """


# ----------------------------------------------------------------------------- commands


@hookspec
def arkrelay_register_commands(cli: click.Group) -> None:
    """Add top-level ``arkrelay`` commands (the reference wallet adds ``arkrelay demo``).

    Called when the command line needs a command it does not have itself, or lists them
    (``--help``, shell completion); never by a running gateway. Keep the module the hook
    lives in cheap to import: define the click command there and import what it runs
    inside its callback. A name the core already uses (``run``, ``keys``...) is ignored
    with a warning, and so is a name a plugin pluggy called earlier added (pluggy calls the
    last registered first).

    :param cli: a click group to ``add_command`` to; its commands become ``arkrelay``'s.
    """


@hookspec
def arkrelay_register_sim_commands(sim: click.Group) -> None:
    """Add commands under ``arkrelay sim``: the plugin's simulators and tools that drive them.

    Called only when the operator runs ``arkrelay sim``, so importing the plugin's
    simulator code costs nothing elsewhere. Import click commands inside the hook.

    :param sim: the click group to ``add_command`` to; name commands after the daemon
        (``arkd``, ``ln``).
    """


# ----------------------------------------------------------------------------- observers


@hookspec
def arkrelay_session_transition(session: SessionView, old: SessionState, new: SessionState) -> None:
    """A signing session moved from ``old`` to ``new`` (already committed).

    :param session: a read-only copy (:class:`~arkrelay_core.interfaces.SessionView`):
        ``id``, ``author``, ``type``, ``step_index``, ``step_total``, ``error_code``,
        ``error_message``, ``entered_at``.
    :param old: the state it left.
    :param new: the state it entered.
    """


@hookspec
def arkrelay_event_published(event: Event) -> None:
    """An event the gateway emitted was accepted by ``[outbox] min_accepts`` relays (1 by
    default; counted over every transport and every attempt), and the outbox recorded it
    as sent. Called after that record commits, by the instance that recorded it: once per
    event on an instance (instances sharing a database may both publish and report one
    event), and not at all if the process dies between the record and the call.

    :param event: the signed event.
    """


@hookspec
def arkrelay_intent_received(intent: Intent) -> None:
    """A 31510 passed validation and opened a session.

    :param intent: the decoded intent content.
    """


@hookspec
def arkrelay_startup(gateway: GatewayView) -> None:
    """The gateway finished starting: transports, backends and the engine run.

    :param gateway: the running gateway (read-only use: ``statistics()``, config).
    """


@hookspec
def arkrelay_shutdown(gateway: GatewayView) -> None:
    """The gateway is stopping; called once, before its tasks are cancelled.

    :param gateway: the running gateway.
    """
