"""/metrics against the running gateway, and the Grafana dashboard and Prometheus alerts
that read it: every metric they name must be one the gateway exposes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from arkrelay_wallet import Wallet
from prometheus_client.parser import text_string_to_metric_families

from arkrelay_core.codes import ErrorCode
from arkrelay_core.http import metrics
from arkrelay_core.http.metrics import SETTLEMENT_COUNTERS
from arkrelay_core.protocol import Kind
from arkrelay_core.store.models import L2Transaction
from plugins.nostr.tests.relay_process import NostrRelay
from tests.ceremony.harness import board
from tests.ceremony.outcomes import transfer_params
from tests.settlement import reference

from .conftest import Api, running_api
from .settlements import add_settlement
from .test_admin_api import ScriptedSettlementPlugin, api_with_plugins

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "arkrelay.json"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
METRIC_NAME = re.compile(r"\barkrelay_[a-z_]+")
#: Seconds to wait for a figure that other tasks move (a relay connecting, the outbox).
PATIENCE = 30
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}


class Scrape:
    """One /metrics answer, parsed: families by name and samples by (name, labels)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in self.families.values():
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for sample_name, labels in self.samples if sample_name == name]

    def family_of(self, name: str) -> Any:
        """The family a sample name belongs to (``x_total`` -> counter ``x`` and so on)."""
        if name in self.families:
            return self.families[name]
        for suffix, types in (
            ("_total", {"counter"}),
            ("_bucket", {"histogram"}),
            ("_sum", {"histogram", "summary"}),
            ("_count", {"histogram", "summary"}),
        ):
            base = name.removesuffix(suffix)
            if base != name and base in self.families and self.families[base].type in types:
                return self.families[base]
        return None


async def scrape(api: Api) -> Scrape:
    response = await api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.text)


async def scrape_until(api: Api, ready: Any, what: str) -> Scrape:
    """Scrape until ``ready(scrape)`` holds (the figures come from tasks running apart)."""
    last = ""
    with trio.move_on_after(PATIENCE):
        while True:
            found = await scrape(api)
            if ready(found):
                return found
            last = found.text
            await trio.sleep(0.1)
    raise AssertionError(f"/metrics never showed {what}:\n{last}")


# --------------------------------------------------------------------------- live gateway


async def test_counting_starts_with_the_gateway(api) -> None:
    """The observer is on the gateway's plugin manager before anyone scrapes."""
    names = [name for name, _ in api.gateway.registry.plugin_manager.list_name_plugin()]
    assert [n for n in names if n.startswith("arkrelay-metrics-")] == [
        metrics.attach(api.gateway).observer.name
    ]


async def test_a_transfer_a_failure_and_a_refusal_are_counted(api) -> None:
    gateway = api.gateway
    gw = gateway.identity.pubkey
    with trio.fail_after(120):
        async with Wallet(api.relay_url, gw) as alice, Wallet(api.relay_url, gw) as bob:
            await board(gateway, alice.pubkey, 5_000)
            done = await alice.run_ceremony(
                alice.intent("ark:transfer", transfer_params(bob.pubkey))
            )
            assert done.event.kind == Kind.CONFIRMATION, done.content
            broke = await alice.run_ceremony(
                alice.intent("ark:transfer", transfer_params(bob.pubkey, 100_000))
            )
            assert broke.content["code"] == ErrorCode.INSUFFICIENT_BALANCE
            refused = await alice.run_ceremony(alice.intent("ark:teleport", {"amount": 1}))
            assert refused.content["code"] == ErrorCode.UNSUPPORTED_ACTION

        found = await scrape_until(
            api, lambda s: s.value("arkrelay_outbox_backlog") == 0, "an empty outbox"
        )

    transfer = "ark:transfer"
    # Only the two intents that opened a session were accepted; the refusal was not.
    assert found.series("arkrelay_intents_received_total") == [{"type": transfer}]
    assert found.value("arkrelay_intents_received_total", type=transfer) == 2
    assert found.value("arkrelay_intents_total", type=transfer, outcome="completed") == 1
    assert found.value("arkrelay_intents_total", type=transfer, outcome="failed") == 1
    assert len(found.series("arkrelay_intents_total")) == 2

    assert sorted(found.series("arkrelay_failures_total"), key=lambda s: s["code"]) == [
        {"code": "1005", "reason": "unsupported_action", "stage": "refused"},
        {"code": "2001", "reason": "insufficient_balance", "stage": "session"},
    ]
    assert (
        found.value(
            "arkrelay_failures_total", code="2001", reason="insufficient_balance", stage="session"
        )
        == 1
    )
    assert (
        found.value(
            "arkrelay_failures_total", code="1005", reason="unsupported_action", stage="refused"
        )
        == 1
    )

    # The completed transfer went through every state once. intent_received is timed from
    # the session's record (to the second), for both the completed and the failed intent.
    histogram = "arkrelay_session_step_duration_seconds"
    steps = {s["step"] for s in found.series(f"{histogram}_count")}
    assert steps == {
        "intent_received",
        "ark_tx_prepared",
        "checkpoint_txs_prepared",
        "signatures_collected",
        "ark_executed",
    }
    for step in steps - {"intent_received"}:
        labels = {"type": transfer, "step": step}
        assert found.value(f"{histogram}_count", **labels) == 1
        assert found.value(f"{histogram}_bucket", **labels, le="+Inf") == 1
        assert 0 < found.value(f"{histogram}_sum", **labels) < 60
    first = {"type": transfer, "step": "intent_received"}
    assert found.value(f"{histogram}_count", **first) == 2
    assert 0 <= found.value(f"{histogram}_sum", **first) < 60

    assert found.series("arkrelay_sessions_open") == []
    assert found.value("arkrelay_outbox_oldest_age_seconds") == 0
    assert found.value("arkrelay_outbox_published_total") >= 4
    assert found.value("arkrelay_inbound_events_total") >= 5


async def test_component_figures_are_sane(api) -> None:
    gateway = api.gateway
    ark = gateway.components.backends["ark"]
    found = await scrape_until(
        api,
        lambda s: s.value("arkrelay_inventory_level", backend="ark", level="ok") == 1,
        "the inventory replenished",
    )
    assert found.value("arkrelay_database_up") == 1
    assert time.time() - 600 < found.value("arkrelay_start_time_seconds") <= time.time()
    assert found.value("arkrelay_relay_connected", transport="endpoint", relay=api.relay_url) == 1

    for backend in ("ark", "lightning"):
        assert found.value("arkrelay_backend_up", backend=backend) == 1
        states = {
            s["state"]: found.value("arkrelay_backend_breaker_state", **s)
            for s in found.series("arkrelay_backend_breaker_state")
            if s["backend"] == backend
        }
        assert states == {"closed": 1, "half_open": 0, "open": 0}
        assert found.value("arkrelay_backend_consecutive_failures", backend=backend) == 0
    assert found.value("arkrelay_backend_calls_total", backend="ark") >= 1

    inventory = ark.inventory
    assert found.value("arkrelay_inventory_balance_sats", backend="ark") == inventory.balance
    assert inventory.balance >= inventory.levels.warning
    assert found.value("arkrelay_inventory_vtxos", backend="ark") >= 1
    for level in ("critical", "warning", "target"):
        configured = getattr(inventory.levels, level)
        assert (
            found.value("arkrelay_inventory_threshold_sats", backend="ark", level=level)
            == configured
        )

    # No settlement strategy here (and none has run): counts are zero, no age yet.
    assert found.value("arkrelay_settlement_enabled") == 0
    assert {s["state"] for s in found.series("arkrelay_settlements")} >= {"committed", "published"}
    assert all(
        found.value("arkrelay_settlements", **s) == 0 for s in found.series("arkrelay_settlements")
    )
    assert found.series("arkrelay_settlement_last_age_seconds") == []
    assert found.families["arkrelay_settlement_last_age_seconds"].type == "gauge"
    # Still exposed, as zeros, so that dashboards and alerts never lose them.
    assert found.value("arkrelay_settlement_backlog") == 0
    assert found.series("arkrelay_settlement_confirmations") == []
    assert found.families["arkrelay_settlement_confirmations"].type == "gauge"
    for counter in SETTLEMENT_COUNTERS:
        assert found.value(f"arkrelay_settlement_{counter}_total") == 0, counter
        assert found.families[f"arkrelay_settlement_{counter}"].type == "counter"
    assert found.value("arkrelay_settlement_leader") == 0
    # Nothing finalized, nothing waiting: the overdue alert's gauge is 0, not absent.
    assert found.value("arkrelay_settlement_uncommitted") == 0
    assert found.value("arkrelay_settlement_uncommitted_age_seconds") == 0


async def test_transactions_no_live_settlement_holds_are_uncommitted(api) -> None:
    """A failed settlement gives its transactions back; any other state holds them."""
    returned, recommitted, published, collecting, fresh = reference.txids(5, seed="waiting")
    now = int(time.time())
    finalized = {
        returned: now - 9_000,
        recommitted: now - 20_000,
        published: now - 30_000,
        collecting: now - 40_000,
        fresh: now - 100,
    }

    def insert(db: Any) -> None:
        for txid, at in finalized.items():
            db.add(L2Transaction(ark_txid=txid, finalized_at=at))
        db.flush()
        add_settlement(db, "anchor-1", [returned, recommitted], state="failed", period_end=now)
        add_settlement(db, "anchor-2", [recommitted, published], period_end=now)
        add_settlement(db, "anchor-3", [collecting], state="collecting", period_end=now)

    await api.gateway.engine.store.run(insert)
    before = time.time()
    found = await scrape(api)
    after = time.time()
    assert found.value("arkrelay_settlement_uncommitted") == 2  # returned and fresh
    age = found.value("arkrelay_settlement_uncommitted_age_seconds")
    oldest = finalized[returned]
    assert before - oldest <= age <= after - oldest
    assert found.families["arkrelay_settlement_uncommitted_age_seconds"].type == "gauge"

    def settle_the_rest(db: Any) -> None:
        add_settlement(db, "anchor-4", [returned, fresh], state="collecting", period_end=now)

    await api.gateway.engine.store.run(settle_the_rest)
    settled = await scrape(api)
    assert settled.value("arkrelay_settlement_uncommitted") == 0
    assert settled.value("arkrelay_settlement_uncommitted_age_seconds") == 0


async def test_settlement_backlog_and_confirmations(api) -> None:
    ids = iter(reference.txids(12, seed="metrics"))
    states = {
        "anchor-100": ("published", 3),
        "anchor-200": ("confirmed", 3),
        "anchor-300": ("confirming", 2),
        "anchor-400": ("committed", 0),
        "anchor-500": ("collecting", 0),
        "anchor-600": ("failed", 0),
    }

    def insert(db: Any) -> None:
        for number, (settlement_id, (state, seen)) in enumerate(states.items()):
            add_settlement(
                db,
                settlement_id,
                [next(ids), next(ids)],
                state=state,
                confirmations=seen,
                period_end=1_767_225_600 + number * 3600,
            )

    await api.gateway.engine.store.run(insert)
    found = await scrape(api)
    assert found.value("arkrelay_settlement_backlog") == 4
    by_settlement = {
        s["settlement"]: found.value("arkrelay_settlement_confirmations", **s)
        for s in found.series("arkrelay_settlement_confirmations")
    }
    assert by_settlement == {"anchor-200": 3, "anchor-300": 2, "anchor-400": 0}
    for state in ("published", "confirmed", "confirming", "committed", "collecting", "failed"):
        assert found.value("arkrelay_settlements", state=state) == 1


class CountingStrategy:
    """A settlement strategy that only reports counters."""

    features: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.counters = {"commit_failures": 4, "fee_bumps": 2, "rebroadcasts": 1, "published": 9}

    async def serve(self, host: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    async def settle_now(self) -> str | None:
        return None

    def statistics(self) -> dict[str, Any]:
        return {**self.counters, "schedule": "every 3600s"}


async def test_settlement_strategy_counters_and_leadership(tmp_path: Path) -> None:
    strategy = CountingStrategy()
    plugin = ScriptedSettlementPlugin(strategy)
    with trio.fail_after(60):
        async with api_with_plugins(
            tmp_path / "gw", (("scripted", plugin),), '[settlement]\nplugin = "scripted"\n'
        ) as api:
            found = await scrape_until(
                api,
                lambda s: s.value("arkrelay_settlement_leader") == 1,
                "this SQLite instance leading",
            )
            assert found.value("arkrelay_settlement_enabled") == 1
            for key, value in strategy.counters.items():
                assert found.value(f"arkrelay_settlement_{key}_total") == value, key
            strategy.counters["fee_bumps"] = 3
            again = await scrape(api)
            assert again.value("arkrelay_settlement_fee_bumps_total") == 3


async def test_an_open_breaker_marks_the_backend_down(api) -> None:
    breaker = api.gateway.components.backends["lightning"].caller.breaker
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    found = await scrape(api)
    assert found.value("arkrelay_backend_breaker_state", backend="lightning", state="open") == 1
    assert found.value("arkrelay_backend_breaker_state", backend="lightning", state="closed") == 0
    assert found.value("arkrelay_backend_up", backend="lightning") == 0
    assert found.value("arkrelay_backend_breaker_opened_total", backend="lightning") == 1
    assert (
        found.value("arkrelay_backend_consecutive_failures", backend="lightning")
        == breaker.failure_threshold
    )
    assert found.value("arkrelay_backend_up", backend="ark") == 1

    breaker.record_success()
    found = await scrape(api)
    assert found.value("arkrelay_backend_breaker_state", backend="lightning", state="closed") == 1
    assert found.value("arkrelay_backend_up", backend="lightning") == 1


async def test_without_the_database_the_process_metrics_remain(api) -> None:
    text = metrics.attach(api.gateway).render(None).decode()
    found = Scrape(text)
    assert found.value("arkrelay_database_up") == 0
    assert found.series("arkrelay_outbox_backlog") == []
    assert found.families["arkrelay_outbox_backlog"].type == "gauge"
    assert found.value("arkrelay_backend_up", backend="ark") == 1


async def test_relay_pool_connection_state(tmp_path: Path) -> None:
    relay = NostrRelay(tmp_path / "relay")
    relay.start()
    try:
        extra = f'[transport.relays]\nplugin = "relays"\nrelays = ["{relay.url}"]\n'
        async with running_api(tmp_path / "gw", extra=extra) as api:
            labels = {"transport": "relays", "relay": relay.url}
            up = await scrape_until(
                api,
                lambda s: s.value("arkrelay_relay_live", **labels) == 1,
                "the relay connected and live",
            )
            assert up.value("arkrelay_relay_connected", **labels) == 1
            relay.stop()
            down = await scrape_until(
                api,
                lambda s: s.value("arkrelay_relay_connected", **labels) == 0,
                "the relay disconnected",
            )
            assert down.value("arkrelay_relay_live", **labels) == 0
            assert (
                down.value("arkrelay_relay_connected", transport="endpoint", relay=api.relay_url)
                == 1
            )
    finally:
        relay.stop()


async def test_every_metric_the_dashboard_and_alerts_use_exists(api) -> None:
    found = await scrape(api)
    uses = [("dashboard", expr) for expr in dashboard_exprs(json.loads(DASHBOARD.read_text()))]
    uses += [("alerts", rule["expr"]) for rule in alert_rules(parse_yaml(ALERTS.read_text()))]
    referenced = {name for _, expr in uses for name in METRIC_NAME.findall(expr)}
    assert len(referenced) >= 20
    missing = sorted(name for name in referenced if found.family_of(name) is None)
    assert missing == [], f"used but not exposed: {missing}"
    # A matcher on a label the metric does not carry selects nothing, silently.
    for where, expr in uses:
        for name, matchers in selectors(expr):
            family = found.family_of(name)
            if not family.samples:
                continue  # nothing to say which labels it carries
            carried = {label for sample in family.samples for label in sample.labels}
            unknown = set(matchers) - carried - TARGET_LABELS
            assert not unknown, f"{where}: {name} has no label {unknown} in {expr!r}"


def test_the_latency_histogram_reads_backend_statistics() -> None:
    latency = {
        "GetInfo": {"buckets": {0.1: 2, 0.01: 1, float("inf"): 3}, "count": 3, "sum": 0.4},
        "Broken": {"buckets": [1, 2], "count": 2, "sum": 1.0},
        "NoCount": {"buckets": {0.1: 1}, "sum": 0.1},
    }
    assert list(metrics.latency_samples(latency)) == [
        ("GetInfo", [("0.01", 1.0), ("0.1", 2.0), ("+Inf", 3.0)], 0.4)
    ]
    assert list(metrics.latency_samples(None)) == []


# --------------------------------------------------------------------------- the ops files


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    board_json = json.loads(DASHBOARD.read_text())
    assert board_json["uid"] == "arkrelay" and board_json["title"] == "ArkRelay"
    assert isinstance(board_json["schemaVersion"], int)
    names = {v["name"] for v in board_json["templating"]["list"]}
    assert names == {"datasource", "instance"}
    panels = list(all_panels(board_json["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        covered = {
            (pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])
        }
        assert not covered & cells, f"panel {panel['title']!r} overlaps another"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'instance=~"$instance"' in target["expr"], target["expr"]
            assert balanced(target["expr"]), target["expr"]


def test_the_alerts_are_a_prometheus_rule_file() -> None:
    document = parse_yaml(ALERTS.read_text())
    assert set(document) == {"groups"}
    groups = document["groups"]
    assert len({g["name"] for g in groups}) == len(groups)
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "limit"} and group["rules"]
    rules = alert_rules(document)
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
        assert re.fullmatch(r"ArkRelay[A-Za-z]+", rule["alert"])
        assert isinstance(rule["expr"], str) and balanced(rule["expr"]), rule["alert"]
        assert re.fullmatch(r"(\d+[smhdwy])+", rule.get("for", "0s")), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert all(isinstance(v, str) for v in rule["labels"].values())
        assert {"summary", "description"} <= set(rule["annotations"])
    # What the gateway's operators must hear about, each by the metric that tells it.
    wanted = {
        "backend down": "arkrelay_backend_up",
        "breaker open": "arkrelay_backend_breaker_state",
        "outbox backlog": "arkrelay_outbox_oldest_age_seconds",
        "settlement overdue": "arkrelay_settlement_uncommitted_age_seconds",
        "failure-rate spike": "arkrelay_intents_total",
        "inventory low": "arkrelay_inventory_level",
        "settlement backlog": "arkrelay_settlement_backlog",
        "settlement commits failing": "arkrelay_settlement_commit_failures_total",
    }
    for topic, metric in wanted.items():
        assert any(metric in r["expr"] for r in rules), f"no alert for {topic}"


# --------------------------------------------------------------------------- helpers


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_exprs(board_json: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in all_panels(board_json["panels"]) for t in p.get("targets", [])]
    for variable in board_json["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def alert_rules(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in document["groups"] for rule in group["rules"]]


def selectors(expr: str) -> Iterator[tuple[str, list[str]]]:
    """(metric, label names matched) for each ``name{...}`` selector in a PromQL expr."""
    for match in re.finditer(r"\b(arkrelay_[a-z_]+)\{([^}]*)\}", expr):
        labels = re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", match.group(2))
        yield match.group(1), labels


def balanced(expr: str) -> bool:
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


# A YAML reader for the block subset the rule file uses (pyyaml is not a dependency):
# mappings, sequences, plain / quoted scalars, `|` block scalars, whole-line comments.
# Anything outside the subset is an error, so the file stays plainly valid YAML.

_KEY = re.compile(r"^([A-Za-z_][\w.-]*):(?: +(.*))?$")


class _Yaml:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.at = 0

    def peek(self) -> tuple[int, str] | None:
        while self.at < len(self.lines):
            line = self.lines[self.at]
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                assert "\t" not in line[: len(line) - len(line.lstrip())], "tab indent"
                return len(line) - len(line.lstrip(" ")), stripped
            self.at += 1
        return None

    def block(self, indent: int) -> Any:
        token = self.peek()
        assert token is not None and token[0] == indent
        if token[1] == "-" or token[1].startswith("- "):
            return self.sequence(indent)
        return self.mapping(indent)

    def mapping(self, indent: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while (token := self.peek()) is not None and token[0] == indent:
            match = _KEY.match(token[1])
            assert match, f"line {self.at + 1}: not a key: {token[1]!r}"
            key, rest = match.group(1), match.group(2) or ""
            assert key not in result, f"line {self.at + 1}: {key} repeated"
            self.at += 1
            result[key] = self.value(rest, indent)
        assert token is None or token[0] < indent, f"line {self.at + 1}: bad indent"
        return result

    def sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while (token := self.peek()) is not None and token[0] == indent:
            if not (token[1] == "-" or token[1].startswith("- ")):
                break
            rest = token[1][1:].lstrip()
            if not rest:
                self.at += 1
                following = self.peek()
                assert following is not None and following[0] > indent
                items.append(self.block(following[0]))
            elif _KEY.match(rest):
                inner = indent + len(token[1]) - len(rest)
                self.lines[self.at] = " " * inner + rest
                items.append(self.mapping(inner))
            else:
                self.at += 1
                items.append(scalar(rest))
        assert token is None or token[0] < indent, f"line {self.at + 1}: bad indent"
        return items

    def value(self, rest: str, indent: int) -> Any:
        if rest in ("|", "|-"):
            return self.literal(indent, keep_newline=rest == "|")
        if rest:
            return scalar(rest)
        token = self.peek()
        if token is not None and (
            token[0] > indent or (token[0] == indent and token[1].startswith("- "))
        ):
            return self.block(token[0])
        return None

    def literal(self, indent: int, *, keep_newline: bool) -> str:
        body: list[str] = []
        depth = None
        while self.at < len(self.lines):
            line = self.lines[self.at]
            if line.strip():
                width = len(line) - len(line.lstrip(" "))
                if width <= indent:
                    break
                depth = width if depth is None else depth
                assert width >= depth, f"line {self.at + 1}: block scalar dedented"
                body.append(line[depth:])
            else:
                body.append("")
            self.at += 1
        text = "\n".join(body).rstrip("\n")
        return text + "\n" if keep_newline else text


def scalar(text: str) -> Any:
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        assert text.endswith("'") and len(text) >= 2
        return text[1:-1].replace("''", "'")
    assert not re.search(r": |\s#|^[\[{&*!|>%@`]", text), f"outside the subset: {text!r}"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return {"true": True, "false": False, "null": None}.get(text, text)


def parse_yaml(text: str) -> Any:
    reader = _Yaml(text)
    token = reader.peek()
    assert token is not None and token[0] == 0
    document = reader.block(0)
    assert reader.peek() is None, f"line {reader.at + 1}: left over"
    return document


def test_the_yaml_subset_reader() -> None:
    text = """\
# comment
a:
  - name: x
    rules:
      - alert: A
        expr: |
          sum(x)
            > 1
        labels:
          severity: "warn {{ $labels.a }}"
  - b
c: 'it''s'
d: 3
"""
    assert parse_yaml(text) == {
        "a": [
            {
                "name": "x",
                "rules": [
                    {
                        "alert": "A",
                        "expr": "sum(x)\n  > 1\n",
                        "labels": {"severity": "warn {{ $labels.a }}"},
                    }
                ],
            },
            "b",
        ],
        "c": "it's",
        "d": 3,
    }
    for bad in ("a: {b: 1}\n", "a: 1\n  b: 2\n", "a: x # trailing\n", "a: 1\na: 2\n"):
        with pytest.raises(AssertionError):
            parse_yaml(bad)
