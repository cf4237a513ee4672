"""``/metrics``: Prometheus metrics of the gateway, in the text exposition format.

Each gateway has its own ``CollectorRegistry`` (several gateways may share a process: the
tests run many). Two sources feed it:

* counters and histograms the :class:`~.observe.CeremonyObserver` keeps from the observer
  hooks (intents, session steps, session failures);
* figures read when Prometheus scrapes: the database (outbox backlog, open sessions,
  settlements and the confirmations of those not yet announced, the finalized
  transactions no settlement holds yet), read in a worker thread before rendering, and
  the ``statistics()`` of the gateway and its components (relays, backend calls and
  breakers, inventory, the settlement strategy's counters).

``attach(gateway)`` creates a gateway's metrics and registers its observer; call it when
the gateway is built so no intent goes uncounted (the first scrape would do it otherwise).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.utils import floatToGoString
from quart import Response
from sqlalchemy.orm import Session

from ..ceremony.engine import IGNORED_PREFIX, RESPONSE_IGNORED_REASONS
from ..codes import ErrorCode
from ..interfaces import InventoryKeeper
from ..store.models import (
    FINAL_SESSION_STATES,
    CeremonySession,
    L2Transaction,
    OutboxEvent,
    Settlement,
)
from ..store.models.settlement import SETTLEMENT_STATES
from .context import ApiContext
from .observe import CeremonyObserver
from .routes import Api

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["CONTENT_TYPE", "DbFigures", "GatewayMetrics", "api", "attach", "read_figures"]

log = logging.getLogger(__name__)

api = Api()

#: The classic text format: every Prometheus version reads it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: Settlement states in which the period's history is committed to L1.
SETTLED_STATES = ("committed", "confirming", "confirmed", "published")
#: Settlements still on their way to a 31342 (the backlog).
OPEN_SETTLEMENT_STATES = ("collecting", "committed", "confirming", "confirmed")
#: Broadcast but not yet announced: these have confirmations worth watching.
UNANNOUNCED_STATES = ("committed", "confirming", "confirmed")
#: Bound on the per-settlement confirmation series; the oldest are the ones that matter.
MAX_CONFIRMATION_SERIES = 20
#: The strategy's ``statistics()`` counters exposed, each as ``arkrelay_settlement_<key>``.
SETTLEMENT_COUNTERS = {
    "commit_failures": "Settlement steps that failed (backend down or refusing); each is "
    "retried at the next poll.",
    "fee_bumps": "Fee bumps of unconfirmed commitment transactions.",
    "rebroadcasts": "Commitment transactions broadcast again at the fee cap.",
    "published": "Settlements announced (31342 queued in the outbox).",
}
BREAKER_STATES = ("closed", "half_open", "open")
INVENTORY_LEVELS = ("ok", "warning", "critical")


@dataclasses.dataclass(frozen=True)
class DbFigures:
    """What the database says at scrape time."""

    outbox_backlog: int
    #: ``created_at`` of the oldest event not yet acknowledged by a relay.
    outbox_oldest: int | None
    #: (type, state) -> count, for sessions not in a final state.
    open_sessions: dict[tuple[str, str], int]
    settlements: dict[str, int]
    #: ``period_end`` of the newest settlement committed to L1.
    last_settled: int | None
    #: (settlement id, confirmations) of broadcast settlements not yet announced, oldest
    #: period first, at most ``MAX_CONFIRMATION_SERIES``.
    unannounced: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    #: Finalized ark transactions no settlement holds (a failed one holds nothing).
    uncommitted: int = 0
    #: ``finalized_at`` of the oldest of them.
    uncommitted_oldest: int | None = None


def read_figures(db: Session) -> DbFigures:
    backlog, oldest = db.execute(
        sa.select(sa.func.count(), sa.func.min(OutboxEvent.created_at)).where(
            OutboxEvent.acked_at.is_(None)
        )
    ).one()
    open_rows = db.execute(
        sa.select(CeremonySession.type, CeremonySession.state, sa.func.count())
        .where(CeremonySession.state.not_in(sorted(FINAL_SESSION_STATES)))
        .group_by(CeremonySession.type, CeremonySession.state)
    ).all()
    settlements = db.execute(
        sa.select(Settlement.state, sa.func.count()).group_by(Settlement.state)
    ).all()
    last = db.scalar(
        sa.select(sa.func.max(Settlement.period_end)).where(Settlement.state.in_(SETTLED_STATES))
    )
    unannounced = db.execute(
        sa.select(Settlement.id, Settlement.confirmations)
        .where(Settlement.state.in_(UNANNOUNCED_STATES))
        .order_by(Settlement.period_end, Settlement.id)
        .limit(MAX_CONFIRMATION_SERIES)
    ).all()
    waiting, waiting_since = db.execute(
        sa.select(sa.func.count(), sa.func.min(L2Transaction.finalized_at)).where(
            L2Transaction.settlement_id.is_(None)
        )
    ).one()
    return DbFigures(
        outbox_backlog=int(backlog),
        outbox_oldest=oldest,
        open_sessions={(t, s): int(n) for t, s, n in open_rows},
        settlements={s: int(n) for s, n in settlements},
        last_settled=last,
        unannounced=[(i, int(n or 0)) for i, n in unannounced],
        uncommitted=int(waiting),
        uncommitted_oldest=waiting_since,
    )


class GatewayMetrics:
    """One gateway's registry, its observer and the collector of scrape-time figures."""

    def __init__(self, gateway: Gateway) -> None:
        self.registry = CollectorRegistry()
        self.observer = CeremonyObserver(gateway, self.registry)
        self.scrape = ScrapeCollector(gateway, self.observer)
        self.registry.register(self.scrape)

    def render(self, figures: DbFigures | None) -> bytes:
        """The exposition text; ``figures`` None means the database could not be read."""
        # Nothing awaits between setting the figures and rendering: scrapes cannot mix.
        self.scrape.figures = figures
        self.scrape.now = time.time()
        return generate_latest(self.registry)


_attached: weakref.WeakKeyDictionary[Gateway, GatewayMetrics] = weakref.WeakKeyDictionary()


def attach(gateway: Gateway) -> GatewayMetrics:
    """The gateway's metrics, created on first use; its observer is (re)registered on the
    gateway's plugin manager."""
    found = _attached.get(gateway)
    if found is None:
        found = _attached[gateway] = GatewayMetrics(gateway)
    found.observer.register(gateway)
    return found


@api.get(
    "/metrics",
    str,
    summary="Prometheus metrics (text exposition format)",
    tag="ops",
    media_type=CONTENT_TYPE,
)
async def metrics(ctx: ApiContext) -> Response:
    state = attach(ctx.gateway)
    figures: DbFigures | None
    try:
        figures = await ctx.db(read_figures)
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        # The process's own metrics still help most exactly when the database is down.
        log.warning("metrics: database not readable: %s: %s", type(exc).__name__, exc)
        figures = None
    return Response(state.render(figures), status=200, content_type=CONTENT_TYPE)


# --------------------------------------------------------------------------- collector


class ScrapeCollector:
    """Yields the figures read at scrape time (``render`` sets them just before)."""

    def __init__(self, gateway: Gateway, observer: CeremonyObserver) -> None:
        self._gateway = weakref.ref(gateway)
        self._observer = observer
        self.started_at = time.time()
        self.figures: DbFigures | None = None
        self.now = self.started_at

    def collect(self) -> Iterator[Metric]:
        gateway = self._gateway()
        if gateway is None:
            return
        stats = gateway.statistics()
        yield _single(
            GaugeMetricFamily,
            "arkrelay_start_time_seconds",
            "When this gateway's metrics began counting (Unix time): about when it started.",
            self.started_at,
        )
        yield _single(
            GaugeMetricFamily,
            "arkrelay_database_up",
            "1 if the database answered this scrape's queries, else 0.",
            1 if self.figures is not None else 0,
        )
        yield from self._gateway_counters(stats)
        yield self._failures(stats.get("engine", {}))
        yield from _responses(stats.get("engine", {}))
        yield from self._database(self.figures)
        yield from _relays(stats["components"])
        yield from _backends(gateway.components.backends, stats["components"])
        yield from _inventory(gateway.components.backends, stats["components"])
        yield _single(
            GaugeMetricFamily,
            "arkrelay_settlement_enabled",
            "1 if a settlement strategy is configured.",
            1 if gateway.components.settlement is not None else 0,
        )
        yield from self._settlements(self.figures)
        yield from _settlement_strategy(gateway, stats["components"].get("settlement"))

    def _gateway_counters(self, stats: Mapping[str, Any]) -> Iterator[Metric]:
        yield _single(
            CounterMetricFamily,
            "arkrelay_inbound_events",
            "Inbound events stored for the first time.",
            stats["inbound"],
        )
        yield _single(
            CounterMetricFamily,
            "arkrelay_inbound_duplicates",
            "Inbound events dropped as already seen (another relay, a replay).",
            stats["duplicates"],
        )
        yield _single(
            CounterMetricFamily,
            "arkrelay_transport_restarts",
            "Times a transport died and was restarted.",
            stats["transport_restarts"],
        )
        outbox = stats["outbox"]
        yield _single(
            CounterMetricFamily,
            "arkrelay_outbox_published",
            "Outbox events a relay accepted.",
            outbox["published"],
        )
        yield _single(
            CounterMetricFamily,
            "arkrelay_outbox_attempts",
            "Outbox publish attempts.",
            outbox["attempts"],
        )
        db_errors = CounterMetricFamily(
            "arkrelay_db_errors",
            "Database errors met, by task: transactions that failed and were run again "
            "(deadlock, serialization failure, lock timeout, lost connection, SQLite busy), "
            "and errors a task survived by pausing or giving up one piece of work.",
            labels=["task"],
        )
        for task, count in sorted(stats["db_errors"].items()):
            db_errors.add_metric([task], count)
        yield db_errors

    def _failures(self, engine: Mapping[str, Any]) -> Metric:
        family = CounterMetricFamily(
            "arkrelay_failures",
            "Failures answered with a 31341, by PROTOCOL.md code: stage=session for a "
            "session that failed, expired or was cancelled; stage=refused for an event "
            "refused before any session (bad intent, rate limit, undecryptable request).",
            labels=["code", "reason", "stage"],
        )
        for code, count in sorted(self._observer.session_failures.items()):
            family.add_metric([str(code), _reason(code), "session"], count)
        refused = {
            int(key.removeprefix("refused_")): value
            for key, value in engine.items()
            if key.startswith("refused_") and key.removeprefix("refused_").isdigit()
        }
        for code, count in sorted(refused.items()):
            family.add_metric([str(code), _reason(code), "refused"], count)
        return family

    def _database(self, figures: DbFigures | None) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "arkrelay_outbox_backlog",
            "Events in the outbox no relay has acknowledged yet.",
        )
        oldest = GaugeMetricFamily(
            "arkrelay_outbox_oldest_age_seconds",
            "Age of the oldest unacknowledged outbox event (0 when there is none).",
        )
        sessions = GaugeMetricFamily(
            "arkrelay_sessions_open",
            "Sessions not yet in a final state, by action type and state.",
            labels=["type", "state"],
        )
        if figures is not None:
            backlog.add_metric([], figures.outbox_backlog)
            age = 0.0 if figures.outbox_oldest is None else self.now - figures.outbox_oldest
            oldest.add_metric([], max(0.0, age))
            for (kind, state), count in sorted(figures.open_sessions.items()):
                sessions.add_metric([kind, state], count)
        yield from (backlog, oldest, sessions)

    def _settlements(self, figures: DbFigures | None) -> Iterator[Metric]:
        counts = GaugeMetricFamily(
            "arkrelay_settlements", "Settlements by state.", labels=["state"]
        )
        last = GaugeMetricFamily(
            "arkrelay_settlement_last_timestamp_seconds",
            "End of the newest settlement period committed to L1 (Unix time); no sample "
            "before the first one.",
        )
        age = GaugeMetricFamily(
            "arkrelay_settlement_last_age_seconds",
            "Seconds since the end of the newest settlement period committed to L1; no "
            "sample before the first one.",
        )
        backlog = GaugeMetricFamily(
            "arkrelay_settlement_backlog",
            "Settlements not yet announced: collecting (waiting to be committed), committed "
            "or confirming on L1, confirmed but not yet published.",
        )
        confirmations = GaugeMetricFamily(
            "arkrelay_settlement_confirmations",
            "L1 confirmations of each commitment broadcast but not yet announced (oldest "
            f"{MAX_CONFIRMATION_SERIES}); no series once it is published.",
            labels=["settlement"],
        )
        uncommitted = GaugeMetricFamily(
            "arkrelay_settlement_uncommitted",
            "Finalized ark transactions no settlement holds yet (a failed settlement holds "
            "none): what the next settlement will commit.",
        )
        waited = GaugeMetricFamily(
            "arkrelay_settlement_uncommitted_age_seconds",
            "Seconds since the oldest finalized ark transaction that no settlement holds "
            "yet was finalized (0 when there is none, so 0 on an idle gateway).",
        )
        if figures is not None:
            for state in SETTLEMENT_STATES:
                counts.add_metric([state], figures.settlements.get(state, 0))
            if figures.last_settled is not None:
                last.add_metric([], figures.last_settled)
                age.add_metric([], max(0.0, self.now - figures.last_settled))
            backlog.add_metric(
                [], sum(figures.settlements.get(s, 0) for s in OPEN_SETTLEMENT_STATES)
            )
            for settlement_id, seen in figures.unannounced:
                confirmations.add_metric([settlement_id], seen)
            uncommitted.add_metric([], figures.uncommitted)
            oldest = figures.uncommitted_oldest
            waited.add_metric([], 0.0 if oldest is None else max(0.0, self.now - oldest))
        yield from (counts, last, age, backlog, confirmations, uncommitted, waited)

    def describe(self) -> Iterator[Metric]:
        # Registration asks for the names; collecting would read a gateway not yet built.
        return iter(())


# --------------------------------------------------------------------------- components


def _relays(components: Mapping[str, Any]) -> Iterator[Metric]:
    connected = GaugeMetricFamily(
        "arkrelay_relay_connected",
        "1 if the transport's relay connection is up (the endpoint: 1 while it serves).",
        labels=["transport", "relay"],
    )
    live = GaugeMetricFamily(
        "arkrelay_relay_live",
        "1 once the relay sent EOSE for the current subscription (stored events are in).",
        labels=["transport", "relay"],
    )
    clients = GaugeMetricFamily(
        "arkrelay_endpoint_clients",
        "Websocket clients connected to the gateway's own relay endpoint.",
        labels=["transport"],
    )
    for key, stats in sorted(components.items()):
        if not key.startswith("transport.") or not isinstance(stats, Mapping):
            continue
        name = key.removeprefix("transport.")
        relays = stats.get("relays")
        if isinstance(relays, Mapping):
            for url, relay in sorted(relays.items()):
                connected.add_metric([name, url], 1 if relay.get("state") == "connected" else 0)
                live.add_metric([name, url], 1 if relay.get("live") else 0)
        elif "running" in stats:
            connected.add_metric([name, str(stats.get("url"))], 1 if stats["running"] else 0)
            clients.add_metric([name], stats.get("connections", 0))
    yield from (connected, live, clients)


def _backends(backends: Mapping[str, Any], components: Mapping[str, Any]) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "arkrelay_backend_up",
        "1 if the backend's last call reached its daemon and the breaker is closed.",
        labels=["backend"],
    )
    families = {
        "calls": CounterMetricFamily(
            "arkrelay_backend_calls", "Backend call attempts.", labels=["backend"]
        ),
        "failures": CounterMetricFamily(
            "arkrelay_backend_call_failures",
            "Backend call attempts that did not reach an answer from the daemon.",
            labels=["backend"],
        ),
        "retries": CounterMetricFamily(
            "arkrelay_backend_call_retries",
            "Backend calls repeated after a transient failure.",
            labels=["backend"],
        ),
        "stream_reconnects": CounterMetricFamily(
            "arkrelay_backend_stream_reconnects",
            "Times a backend's event stream was opened again.",
            labels=["backend"],
        ),
    }
    breaker = GaugeMetricFamily(
        "arkrelay_backend_breaker_state",
        "The backend's circuit breaker: 1 for its current state, 0 for the others.",
        labels=["backend", "state"],
    )
    opened = CounterMetricFamily(
        "arkrelay_backend_breaker_opened",
        "Times the backend's circuit breaker opened.",
        labels=["backend"],
    )
    consecutive = GaugeMetricFamily(
        "arkrelay_backend_consecutive_failures",
        "Failed backend calls since the last one the daemon answered.",
        labels=["backend"],
    )
    latency = HistogramMetricFamily(
        "arkrelay_backend_call_duration_seconds",
        "Backend call latency by gRPC method (from the backend's statistics()['latency']).",
        labels=["backend", "method"],
    )
    for role in sorted(backends):
        stats = components.get(f"backend.{role}")
        if not isinstance(stats, Mapping):
            continue
        for key, family in families.items():
            if isinstance(stats.get(key), int):
                family.add_metric([role], stats[key])
        state = _breaker(stats)
        if state is not None:
            for name in BREAKER_STATES:
                breaker.add_metric([role, name], 1 if state["state"] == name else 0)
            opened.add_metric([role], state.get("times_opened", 0))
            consecutive.add_metric([role], state.get("consecutive_failures", 0))
        healthy = _backend_up(stats, state)
        if healthy is not None:
            up.add_metric([role], 1 if healthy else 0)
        for method, buckets, total in latency_samples(stats.get("latency")):
            latency.add_metric([role, method], buckets, total)
    yield from (up, *families.values(), breaker, opened, consecutive, latency)


def _responses(engine: Mapping[str, Any]) -> Iterator[Metric]:
    """What third parties and late resends did to sessions: nothing, counted here."""
    ignored = CounterMetricFamily(
        "arkrelay_responses_ignored",
        "Signing responses (31512) ignored, never answered, by reason: undecryptable, "
        "malformed, mismatched_d (its d tag names another session or no step), "
        "closed_session (unknown or over), not_author (not signed by the intent's author: "
        "someone else answering a public challenge), not_current (the author's, for a "
        "step that is not the current one).",
        labels=["reason"],
    )
    for reason in RESPONSE_IGNORED_REASONS:
        ignored.add_metric([reason], engine.get(f"{IGNORED_PREFIX}{reason}", 0))
    yield ignored
    yield _single(
        CounterMetricFamily,
        "arkrelay_rechallenges",
        "Challenges sent again for the same step after SubmitTx (a bad checkpoint "
        "signature from the author, or a step that ran out of time).",
        engine.get("rechallenges", 0),
    )
    yield _single(
        CounterMetricFamily,
        "arkrelay_pending_tx_handed_over",
        "Sessions that reached their deadline after SubmitTx without finalizing: ended "
        "with a 31341 3002 carrying the pending transaction for the wallet to finalize.",
        engine.get("pending_handed_over", 0),
    )


def _breaker(stats: Mapping[str, Any]) -> Mapping[str, Any] | None:
    breaker = stats.get("breaker")
    if isinstance(breaker, Mapping) and breaker.get("state") in BREAKER_STATES:
        return breaker
    return None


def _backend_up(stats: Mapping[str, Any], breaker: Mapping[str, Any] | None) -> bool | None:
    """The same judgement as /ready, plus the last call: None when the backend says nothing."""
    if stats.get("connected") is False:
        return False
    if breaker is None:
        return True if stats.get("connected") is True else None
    return breaker["state"] == "closed" and not breaker.get("consecutive_failures")


def latency_samples(
    latency: Any,
) -> Iterator[tuple[str, list[tuple[str, float]], float]]:
    """(method, cumulative buckets ending with +Inf, sum) from a backend's latency stats.

    The shape read: ``{method: {"buckets": {upper_bound_seconds: cumulative_count},
    "count": calls, "sum": seconds}}``; anything else is skipped.
    """
    if not isinstance(latency, Mapping):
        return
    for method, entry in sorted(latency.items()):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("buckets"), Mapping):
            continue
        count, total = entry.get("count"), entry.get("sum")
        if not isinstance(count, int) or not isinstance(total, int | float):
            continue
        bounds = sorted((float(le), n) for le, n in entry["buckets"].items())
        buckets = [(floatToGoString(le), float(n)) for le, n in bounds if le < math.inf]
        buckets.append(("+Inf", float(count)))
        yield str(method), buckets, float(total)


def _inventory(backends: Mapping[str, Any], components: Mapping[str, Any]) -> Iterator[Metric]:
    balance = GaugeMetricFamily(
        "arkrelay_inventory_balance_sats",
        "The gateway's own spendable VTXOs (liquidity for Lightning lifts), in sats.",
        labels=["backend"],
    )
    vtxos = GaugeMetricFamily(
        "arkrelay_inventory_vtxos", "The gateway's own spendable VTXOs.", labels=["backend"]
    )
    level = GaugeMetricFamily(
        "arkrelay_inventory_level",
        "The inventory's level: 1 for the current one (ok, warning, critical), 0 otherwise.",
        labels=["backend", "level"],
    )
    thresholds = GaugeMetricFamily(
        "arkrelay_inventory_threshold_sats",
        "The configured inventory levels: below critical / warning alerts; target is what "
        "replenishing tops up to.",
        labels=["backend", "level"],
    )
    for role in sorted(backends):
        stats = components.get(f"backend.{role}")
        inventory = stats.get("inventory") if isinstance(stats, Mapping) else None
        if not isinstance(inventory, Mapping):
            continue
        balance.add_metric([role], inventory.get("balance", 0))
        vtxos.add_metric([role], inventory.get("vtxo_count", 0))
        for name in INVENTORY_LEVELS:
            level.add_metric([role, name], 1 if inventory.get("level") == name else 0)
        backend = backends[role]
        kept = backend.inventory if isinstance(backend, InventoryKeeper) else None
        if kept is not None:
            levels = kept.levels
            for name, value in (
                ("critical", levels.critical),
                ("warning", levels.warning),
                ("target", levels.target),
            ):
                thresholds.add_metric([role, name], value)
    yield from (balance, vtxos, level, thresholds)


def _settlement_strategy(gateway: Gateway, stats: Any) -> Iterator[Metric]:
    """The strategy's counters (zero without one, so dashboards and alerts always find
    them), and whether this instance holds settlement leadership."""
    found = stats if isinstance(stats, Mapping) else {}
    for key, doc in SETTLEMENT_COUNTERS.items():
        value = found.get(key, 0)
        yield _single(
            CounterMetricFamily,
            f"arkrelay_settlement_{key}",
            doc + " Counted by the instance that leads, since it started.",
            value if isinstance(value, int | float) and not isinstance(value, bool) else 0,
        )
    leadership = gateway.leadership
    yield _single(
        GaugeMetricFamily,
        "arkrelay_settlement_leader",
        "1 if this instance holds settlement leadership (runs the strategy), else 0.",
        1 if leadership is not None and leadership.is_leader else 0,
    )


# --------------------------------------------------------------------------- helpers


def _reason(code: int) -> str:
    try:
        return ErrorCode(code).name.lower()
    except ValueError:
        return "unknown"


def _single(kind: type, name: str, doc: str, value: float) -> Metric:
    family = kind(name, doc)
    family.add_metric([], value)
    return family
