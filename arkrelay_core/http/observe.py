"""What the ceremony engine tells its observers, turned into Prometheus counters.

One :class:`CeremonyObserver` per gateway, registered on the gateway's own plugin manager
(``metrics.attach``): it counts intents by type and outcome, session failures by code,
and times each state a session passes through. Everything here is in-process, so it
starts from zero when the gateway starts, as Prometheus counters expect.
"""

from __future__ import annotations

import collections
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram

from ..interfaces import SessionView
from ..plugins import hookimpl
from ..protocol import Intent, SessionState
from ..protocol.intents import canonical_action_type

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["STEP_BUCKETS", "CeremonyObserver"]

#: Seconds. A step is either the gateway's own work with its backends (well under a
#: second) or a wallet's signing round trip (seconds, up to the step timeout).
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
#: Sessions whose current state's entry time is remembered. A session that never ends in
#: this process (taken over by another instance, or ended while we were down) would
#: otherwise stay forever; past this many the oldest are forgotten.
TRACKED_SESSIONS = 50_000


class CeremonyObserver:
    """A pluggy plugin object: implements the observer hooks of ``hookspecs``."""

    def __init__(
        self,
        gateway: Gateway,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The plugin manager holds this object; it must not keep the gateway alive.
        self._gateway = weakref.ref(gateway)
        self._clock = clock
        self.received = Counter(
            "arkrelay_intents_received",
            "Intents (31510) that passed validation and opened a session, by action type.",
            ["type"],
            registry=registry,
        )
        self.finished = Counter(
            "arkrelay_intents",
            "Intents whose session ended, by action type and outcome "
            "(completed, failed, expired, cancelled).",
            ["type", "outcome"],
            registry=registry,
        )
        self.steps = Histogram(
            "arkrelay_session_step_duration_seconds",
            "Time a session spent in one state (step) before moving on, by action type. "
            "Timed from the previous transition this process saw (to the second from the "
            "session's record for the first state or after a restart).",
            ["type", "step"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        #: Session failures by PROTOCOL.md code; rendered with the engine's refusals as
        #: ``arkrelay_failures_total`` by the scrape collector.
        self.session_failures: collections.Counter[int] = collections.Counter()
        self._entered: collections.OrderedDict[str, tuple[str, float]] = collections.OrderedDict()

    @property
    def name(self) -> str:
        return f"arkrelay-metrics-{id(self):x}"

    def register(self, gateway: Gateway) -> None:
        manager = gateway.registry.plugin_manager
        if not manager.is_registered(self):
            manager.register(self, name=self.name)

    # ------------------------------------------------------------------ hooks

    @hookimpl
    def arkrelay_intent_received(self, intent: Intent) -> None:
        self.received.labels(type=canonical_action_type(intent.type)).inc()

    @hookimpl
    def arkrelay_session_transition(
        self, session: SessionView, old: SessionState, new: SessionState
    ) -> None:
        now = self._clock()
        entered = self._entered.pop(session.id, None)
        duration = None
        if entered is not None and entered[0] == old:
            duration = now - entered[1]
        elif session.entered_at:
            # Not seen entering it (the first state, or before a restart): the session's
            # own record says when, to the second.
            duration = max(0.0, time.time() - session.entered_at)
        if duration is not None:
            self.steps.labels(type=session.type, step=str(old)).observe(duration)
        if new.is_final:
            self.finished.labels(type=session.type, outcome=str(new)).inc()
            if new is not SessionState.COMPLETED and session.error_code is not None:
                self.session_failures[int(session.error_code)] += 1
            return
        self._entered[session.id] = (str(new), now)
        while len(self._entered) > TRACKED_SESSIONS:
            self._entered.popitem(last=False)

    @hookimpl
    def arkrelay_shutdown(self, gateway: Gateway) -> None:
        # The plugin manager may outlive this gateway (a test reusing a registry): a
        # stopped gateway's observer must not count the next one's sessions.
        if gateway is self._gateway():
            gateway.registry.plugin_manager.unregister(self)
