"""``/admin/*`` against the running gateway with its simulators: the key check and its
audit trail, then every route doing its job."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
from arkrelay_wallet import Wallet

from arkrelay_core.codes import ErrorCode
from arkrelay_core.config import load_config_text
from arkrelay_core.errors import BackendUnavailable
from arkrelay_core.http import admin_views
from arkrelay_core.http.admin import AUDIT_FILE
from arkrelay_core.identity import DEV_PASSPHRASE
from arkrelay_core.interfaces import PluginSpec, TxOutputSpec
from arkrelay_core.nostr import bip340, encode_npub
from arkrelay_core.outbox import enqueue
from arkrelay_core.plugins import hookimpl, load_plugins
from arkrelay_core.protocol import Kind, session_id_for
from arkrelay_core.servicekey import ScryptCost, rotate
from arkrelay_core.serving import serving
from arkrelay_core.store.models import CeremonySession, OutboxEvent
from tests.ceremony.outcomes import action_id, transfer_params

from .conftest import ADMIN_KEY, Api, http_config, running_api

ROUTES = admin_views.api.routes
SOME_SESSION = "sess_0123456789abcdef01234567"


def route_url(path: str) -> str:
    return path.replace("{session_id}", SOME_SESSION)


def audit_lines(api: Api) -> list[dict[str, Any]]:
    path = api.gateway.config.gateway.data_dir / AUDIT_FILE
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the key ---------------------------------------------------------------------------------


async def test_every_route_is_admin_and_documented() -> None:
    assert len(ROUTES) == 9
    for route in ROUTES:
        assert route.admin and route.tag == "admin" and route.summary, route.path
        assert route.path.startswith("/admin/") and 401 in route.errors, route.path


async def test_refused_without_the_right_key_in_the_header_and_audited(api: Api) -> None:
    attempts = [
        {},  # no key
        {"headers": {"X-Admin-Key": "wrong-" + ADMIN_KEY}},
        {"headers": {"X-Admin-Key": ADMIN_KEY[:-1]}},
        {"params": {"admin_key": ADMIN_KEY}},
        {"params": {"state": ADMIN_KEY}},  # the key under any name
        {"params": {"key": "x"}, "headers": {"X-Admin-Key": ADMIN_KEY}},
    ]
    with trio.fail_after(60):
        for route in ROUTES:
            for attempt in attempts:
                response = await api.client.request(route.method, route_url(route.path), **attempt)
                assert response.status_code == 401, (route.path, attempt)
                body = response.json()
                assert body["error"] == "unauthorized", body
                if "params" in attempt:
                    assert "query string" in body["detail"]
    lines = audit_lines(api)
    assert len(lines) == len(ROUTES) * len(attempts)
    for line in lines:
        assert set(line) == {"time", "method", "path", "route", "outcome", "status", "remote"}
        assert line["status"] == 401 and line["outcome"].startswith("refused: ")
        assert line["remote"] == "127.0.0.1"
        assert ADMIN_KEY not in json.dumps(line) and ADMIN_KEY[:-1] not in json.dumps(line)
    assert {(line["method"], line["path"]) for line in lines} == {
        (r.method, route_url(r.path)) for r in ROUTES
    }
    assert "X-Admin-Key" in lines[0]["outcome"]


async def test_the_right_key_works_and_is_audited_with_the_outcome(api: Api) -> None:
    with trio.fail_after(30):
        ok = await api.admin("GET", "/admin/plugins")
        missing = await api.admin("POST", f"/admin/sessions/{SOME_SESSION}/cancel")
    assert ok.status_code == 200
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    first, second = audit_lines(api)
    assert (first["route"], first["outcome"], first["status"]) == ("admin_plugins", "allowed", 200)
    assert (second["route"], second["status"]) == ("admin_cancel_session", 404)
    assert second["path"] == f"/admin/sessions/{SOME_SESSION}/cancel"


async def test_unknown_admin_paths_and_wrong_methods_are_audited_too(api: Api) -> None:
    with trio.fail_after(30):
        unknown = await api.admin("GET", "/admin/nothing-here")
        wrong = await api.admin("DELETE", "/admin/plugins")
    assert unknown.status_code == 404 and wrong.status_code == 405
    lines = audit_lines(api)
    assert [(x["path"], x["status"], x["route"]) for x in lines] == [
        ("/admin/nothing-here", 404, None),
        ("/admin/plugins", 405, None),
    ]
    assert all(x["outcome"] == "refused: no such admin route" for x in lines)


async def test_no_admin_key_configured_means_the_admin_api_is_off(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_api(tmp_path / "gw", admin_key=None) as api:
            for route in ROUTES:
                response = await api.admin(route.method, route_url(route.path))
                assert response.status_code == 401, route.path
                assert "admin API is off" in response.json()["detail"]
            assert (await api.get("/health")).status_code == 200
            lines = audit_lines(api)
    assert len(lines) == len(ROUTES)
    assert all("admin API is off" in line["outcome"] for line in lines)


# -- what runs --------------------------------------------------------------------------------


async def test_plugins_with_their_statistics_and_breakers(api: Api) -> None:
    with trio.fail_after(30):
        body = (await api.admin("GET", "/admin/plugins")).json()
    plugins = {(p["role"], p["name"]): p for p in body["plugins"]}
    arkd = plugins[("ark", "arkd")]
    assert arkd["enabled"] and arkd["instances"] == ["backend.ark"]
    assert arkd["distribution"] == "arkrelay-arkd" and arkd["version"] == "0.1.0"
    assert plugins[("lightning", "lnd")]["instances"] == ["backend.lightning"]
    assert plugins[("transport", "endpoint")]["instances"] == ["transport.endpoint"]
    assert plugins[("transport", "relays")] == {
        **plugins[("transport", "relays")],
        "enabled": False,
        "instances": [],
    }
    components = {c["name"]: c for c in body["components"]}
    assert set(components) == {"transport.endpoint", "backend.ark", "backend.lightning"}
    ark = components["backend.ark"]
    assert ark["plugin"] == "arkd" and ark["role"] == "ark"
    assert ark["breaker"]["state"] == "closed"
    assert ark["statistics"]["breaker"] == ark["breaker"]
    assert ark["statistics"]["simulated"] is True
    assert components["transport.endpoint"]["breaker"] is None
    assert body["failures"] == []


async def test_relays_report_the_transports(api: Api) -> None:
    with trio.fail_after(30):
        async with Wallet(api.relay_url, api.gateway.identity.pubkey) as wallet:
            await wallet.call("get_info")
        body = (await api.admin("GET", "/admin/relays")).json()
    assert body["inbound"] >= 1 and body["duplicates"] == 0
    assert body["transport_restarts"] == 0
    [endpoint] = body["transports"]
    assert endpoint["name"] == "endpoint" and endpoint["plugin"] == "endpoint"
    assert endpoint["statistics"]["url"] == api.relay_url
    assert endpoint["statistics"]["events_accepted"] >= 1


# -- sessions ---------------------------------------------------------------------------------


async def _waiting_transfer(api: Api, wallet: Wallet) -> Any:
    """Fund ``wallet``, publish a transfer and wait for its first challenge (unanswered)."""
    await api.gateway.components.backends["ark"].board(wallet.pubkey, 5_000)
    intent = wallet.intent("ark:transfer", transfer_params("ab" * 32))
    await wallet.publish(intent)
    challenge = await wallet.next(Kind.CHALLENGE)
    assert challenge.content["session_id"] == session_id_for(intent.id)
    return intent


async def test_cancel_a_waiting_session_tells_its_wallet_3004(api: Api) -> None:
    gateway_key = api.gateway.identity.pubkey
    with trio.fail_after(90):
        async with (
            Wallet(api.relay_url, gateway_key) as alice,
            Wallet(api.relay_url, gateway_key) as bob,
        ):
            cancelled = await _waiting_transfer(api, alice)
            waiting = await _waiting_transfer(api, bob)
            session_id = session_id_for(cancelled.id)
            before = (await api.get(f"/sessions/{session_id}")).json()
            assert before["state"] == "ark_tx_prepared"

            response = await api.admin(
                "POST", f"/admin/sessions/{session_id}/cancel", params={"reason": "maintenance"}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["session"]["state"] == "cancelled"
            assert body["session"]["error_code"] == ErrorCode.SESSION_CANCELLED
            assert body["batch_legs_failed"] == []

            outcome = await alice.wait_outcome(action_id(cancelled), cancelled.id)
            assert outcome.event.kind == Kind.FAILURE
            assert outcome.content["code"] == ErrorCode.SESSION_CANCELLED == 3004
            assert "maintenance" in outcome.content["message"]

            shown = (await api.get(f"/sessions/{session_id}")).json()
            assert shown["state"] == "cancelled" and shown["error_code"] == 3004
            again = await api.admin("POST", f"/admin/sessions/{session_id}/cancel")
            assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
            too_long = await api.admin(
                "POST", f"/admin/sessions/{session_id}/cancel", params={"reason": "x" * 201}
            )
            assert too_long.status_code == 400

            await _list_sessions(api, alice.pubkey, session_id, session_id_for(waiting.id))
            await _no_cancel_while_submitting(api, session_id_for(waiting.id))
    statuses = [(line["route"], line["status"]) for line in audit_lines(api)]
    assert ("admin_cancel_session", 200) in statuses
    assert ("admin_cancel_session", 409) in statuses and ("admin_cancel_session", 400) in statuses


async def _no_cancel_while_submitting(api: Api, session_id: str) -> None:
    """A session whose signed ark tx is going to the Ark server is not the operator's to
    end: the money may move. (The phase is set here as the engine sets it once the wallet
    has signed the ark tx round.)"""

    def submitting(db: Any) -> None:
        row = db.get(CeremonySession, session_id)
        row.context = {**row.context, "phase": "submit"}

    await api.gateway.engine.store.run(submitting)
    refused = await api.admin("POST", f"/admin/sessions/{session_id}/cancel")
    assert refused.status_code == 409 and "being executed" in refused.json()["detail"]
    shown = (await api.get(f"/sessions/{session_id}")).json()
    assert shown["state"] == "ark_tx_prepared"


async def _list_sessions(api: Api, alice: str, cancelled: str, waiting: str) -> None:
    async def ids(**params: str) -> list[str]:
        response = await api.admin("GET", "/admin/sessions", params=params)
        assert response.status_code == 200, response.text
        return [s["session_id"] for s in response.json()["items"]]

    assert set(await ids()) == {cancelled, waiting}
    assert await ids(state="cancelled") == [cancelled]
    assert await ids(state="open") == [waiting]
    assert await ids(state="ark_tx_prepared") == [waiting]
    assert await ids(author=alice) == [cancelled]
    assert await ids(author=encode_npub(alice)) == [cancelled]
    assert set(await ids(type="ark:transfer")) == {cancelled, waiting}
    assert await ids(type="lightning:land") == []

    first = (await api.admin("GET", "/admin/sessions", params={"limit": "1"})).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = (
        await api.admin(
            "GET", "/admin/sessions", params={"limit": "1", "cursor": first["next_cursor"]}
        )
    ).json()
    assert second["next_cursor"] is None
    paged = [first["items"][0]["session_id"], second["items"][0]["session_id"]]
    assert paged == await ids()
    assert first["items"][0]["created_at"] >= second["items"][0]["created_at"]

    for bad in ({"state": "sleeping"}, {"author": "zz"}, {"cursor": "!!"}, {"limit": "0"}):
        response = await api.admin("GET", "/admin/sessions", params=bad)
        assert response.status_code == 400, bad


# -- settlement -------------------------------------------------------------------------------


async def test_settlement_trigger_without_a_strategy_says_so(api: Api) -> None:
    with trio.fail_after(30):
        response = await api.admin("POST", "/admin/settlements/trigger")
    assert response.status_code == 409
    assert "no settlement strategy is configured" in response.json()["detail"]


class NoSettings(msgspec.Struct, forbid_unknown_fields=True):
    pass


class ScriptedStrategy:
    """A settlement strategy whose ``settle_now`` answers come from a script."""

    features: frozenset[str] = frozenset()

    def __init__(self, answers: list[str | Exception | None]) -> None:
        self.answers = answers
        self.triggered = 0

    async def serve(self, host: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    async def settle_now(self) -> str | None:
        self.triggered += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def statistics(self) -> dict[str, int]:
        return {"triggered": self.triggered}


class ScriptedSettlementPlugin:
    def __init__(self, strategy: ScriptedStrategy) -> None:
        self.strategy = strategy

    @hookimpl
    def arkrelay_register_settlement_strategies(self) -> list[PluginSpec]:
        return [
            PluginSpec(
                "scripted",
                "0.0.1",
                "settlement",
                NoSettings,
                lambda settings, context: self.strategy,
                "answers settle_now from a script",
            )
        ]


@contextlib.asynccontextmanager
async def api_with_plugins(directory: Path, plugins: Any, extra: str) -> AsyncIterator[Api]:
    registry = load_plugins(extra=plugins)
    config = load_config_text(
        http_config(directory, extra=extra),
        source=str(directory / "gw.toml"),
        settings_resolver=registry.settings_type,
    )
    async with serving(config, registry, environ={}) as gateway:
        assert gateway.http is not None
        async with httpx.AsyncClient(base_url=gateway.http.url, timeout=30) as client:
            yield Api(gateway, client, gateway.http.url, "")


async def test_settlement_trigger_calls_the_configured_strategy(tmp_path: Path) -> None:
    strategy = ScriptedStrategy(
        [
            "stl_001",
            None,
            BackendUnavailable("the anchor wallet is unreachable"),
            RuntimeError("this instance is not settling (it does not hold leadership)"),
        ]
    )
    plugin = ScriptedSettlementPlugin(strategy)
    with trio.fail_after(60):
        async with api_with_plugins(
            tmp_path / "gw", (("scripted", plugin),), '[settlement]\nplugin = "scripted"\n'
        ) as api:
            first = await api.admin("POST", "/admin/settlements/trigger")
            empty = await api.admin("POST", "/admin/settlements/trigger")
            broken = await api.admin("POST", "/admin/settlements/trigger")
            follower = await api.admin("POST", "/admin/settlements/trigger")
            plugins = (await api.admin("GET", "/admin/plugins")).json()
    assert first.status_code == 200 and first.json()["settlement_id"] == "stl_001"
    assert empty.status_code == 200 and empty.json()["settlement_id"] is None
    assert broken.status_code == 503
    assert broken.json()["code"] == ErrorCode.ARK_UNAVAILABLE
    assert follower.status_code == 409
    assert "does not hold leadership" in follower.json()["detail"]
    assert strategy.triggered == 4
    [component] = [c for c in plugins["components"] if c["name"] == "settlement"]
    assert component["plugin"] == "scripted" and component["statistics"] == {"triggered": 4}


# -- inventory --------------------------------------------------------------------------------


@pytest.fixture
async def quiet_inventory_api(tmp_path: Path) -> AsyncIterator[Api]:
    """The gateway whose inventory monitor checks once at start, then not for an hour."""
    extra = '[backend.ark.inventory]\ncheck_every = "1h"\n'
    async with running_api(tmp_path / "gw", extra=extra) as running:
        yield running


async def test_inventory_status_and_replenish_on_the_simulator(quiet_inventory_api: Api) -> None:
    api = quiet_inventory_api
    gateway = api.gateway
    with trio.fail_after(60):
        # The monitor's first check, at start, boards the empty inventory up to its target.
        while True:
            shown = (await api.admin("GET", "/admin/inventory", params={"refresh": "true"})).json()
            if shown["replenished"] >= 1 and shown["balance"] == 200_000:
                break
            await trio.sleep(0.05)
        assert shown["owner"] == gateway.identity.pubkey and shown["level"] == "ok"
        assert shown["levels"] == {
            "critical": 10_000,
            "warning": 50_000,
            "target": 200_000,
            "check_every_seconds": 3600.0,
        }
        assert sum(v["amount"] for v in shown["vtxos"]) == 200_000
        assert 0 <= shown["refreshed_seconds_ago"] < 5

        idle = await api.admin("POST", "/admin/inventory/replenish")
        assert idle.status_code == 200, idle.text
        assert idle.json()["replenished"] is False
        assert "nothing to do" in idle.json()["detail"]

        # A lift's worth of spending takes the inventory below critical.
        def sign(digest: bytes) -> bytes:
            return bytes.fromhex(gateway.identity.sign_hash(digest.hex()))

        ark = gateway.components.backends["ark"]
        someone = bip340.xonly_public_key(bip340.generate_secret_key()).hex()
        await ark.send_from_inventory([TxOutputSpec(someone, 195_000)], sign)
        low = (await api.admin("GET", "/admin/inventory")).json()
        assert (low["balance"], low["level"], low["sends"]) == (5_000, "critical", 1)

        topped = await api.admin("POST", "/admin/inventory/replenish")
    assert topped.status_code == 200, topped.text
    body = topped.json()
    assert body["replenished"] is True
    assert (body["balance_before"], body["level_before"]) == (5_000, "critical")
    assert body["inventory"]["balance"] == 200_000 and body["inventory"]["level"] == "ok"
    assert body["inventory"]["replenished"] == shown["replenished"] + 1


async def test_inventory_routes_need_an_ark_backend_with_an_inventory(api: Api) -> None:
    with trio.fail_after(30):
        bad = await api.admin("GET", "/admin/inventory", params={"refresh": "maybe"})
        assert bad.status_code == 400
        ark = api.gateway.components.backends["ark"]
        inventory, ark.inventory = ark.inventory, None
        try:
            status = await api.admin("GET", "/admin/inventory")
            replenish = await api.admin("POST", "/admin/inventory/replenish")
        finally:
            ark.inventory = inventory
    assert status.status_code == 404 and replenish.status_code == 404
    assert "no inventory" in status.json()["detail"]


# -- keys and outbox --------------------------------------------------------------------------


async def test_keys_show_rotation_state_and_never_a_secret(api: Api) -> None:
    identity = api.gateway.identity
    first_key = identity.pubkey
    with trio.fail_after(60):
        before = (await api.admin("GET", "/admin/keys")).json()
        assert before["service_pubkey"] == first_key
        assert before["npub"] == encode_npub(first_key)
        assert before["dev_key"] is True and before["restart_pending"] is False
        [only] = before["keys"]
        assert (only["pubkey"], only["state"], only["retire_at"]) == (first_key, "current", None)
        assert only["signing"] and only["listening"]

        key_file = api.gateway.config.gateway.key_file
        rotated_at = int(time.time())
        await trio.to_thread.run_sync(
            lambda: rotate(key_file, DEV_PASSPHRASE, 3600, cost=ScryptCost(n=2**10))
        )
        response = await api.admin("GET", "/admin/keys")
    after = response.json()
    assert after["service_pubkey"] == first_key and after["restart_pending"] is True
    new, old = after["keys"]
    assert new["state"] == "current" and not new["signing"] and not new["listening"]
    assert old["pubkey"] == first_key and old["state"] == "retiring"
    assert old["signing"] and old["listening"]
    assert rotated_at + 3600 <= old["retire_at"] <= int(time.time()) + 3600
    assert "secret" not in response.text and "ciphertext" not in response.text
    assert "nonce" not in response.text and "kdf" not in response.text


async def test_outbox_backlog(api: Api) -> None:
    now = int(time.time())
    stuck = api.gateway.identity.sign_event(1, "stuck", [])

    def add_stuck(db: Any) -> None:
        enqueue(db, stuck, now=now - 120)
        db.flush()
        row = db.query(OutboxEvent).filter_by(event_id=stuck.id).one()
        # Three failed attempts, the next one an hour away: the publisher leaves it be.
        row.attempts, row.next_attempt_at = 3, now + 3600
        row.last_error = "relay wss://down.example: connection refused"

    with trio.fail_after(30):
        empty = (await api.admin("GET", "/admin/outbox")).json()
        await api.gateway.engine.store.run(add_stuck)
        body = (await api.admin("GET", "/admin/outbox")).json()
    assert empty["pending"] == 0 and empty["oldest"] == [] and empty["oldest_created_at"] is None
    assert (body["pending"], body["failing"], body["max_attempts"]) == (1, 1, 3)
    assert body["oldest_created_at"] == now - 120 and body["oldest_age_seconds"] >= 120
    [item] = body["oldest"]
    assert item["event_id"] == stuck.id and item["kind"] == 1 and item["attempts"] == 3
    assert item["last_error"].endswith("connection refused")
    assert {"published", "attempts", "backlog", "last_error"} <= set(body["publisher"])
