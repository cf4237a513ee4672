"""The read-only API against the running gateway with its simulators."""

from __future__ import annotations

import json
import time

from arkrelay_wallet import Wallet

from arkrelay_core.nostr import encode_npub
from arkrelay_core.protocol import Kind
from arkrelay_core.store.models import Settlement
from tests.ceremony.outcomes import transfer_params
from tests.settlement import reference

from .settlements import add_settlement


async def test_health_and_ready(api) -> None:
    assert (await api.get("/health")).json() == {"status": "ok"}
    ready = await api.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert set(body["checks"]) >= {"database", "transport.endpoint", "backend.ark"}


async def test_info_names_the_gateway(api) -> None:
    info = (await api.get("/info")).json()
    pubkey = api.gateway.identity.pubkey
    assert info["service_pubkey"] == pubkey and info["npub"] == encode_npub(pubkey)
    assert info["endpoint_url"] == api.relay_url
    assert [a["ticker"] for a in info["assets"]] == ["gBTC"]
    assert info["plugins"]["arkd"] == "0.1.0"


async def test_errors_are_json_never_html(api) -> None:
    for path, status in (("/nope", 404), ("/sessions/sess_x", 404), ("/vtxos/zz", 400)):
        response = await api.get(path)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) == {"error", "code", "detail"}
    wrong_method = await api.client.post("/health")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"
    too_big = await api.client.post("/health", content=b"x" * 200_000)
    assert too_big.status_code in (405, 413) and "error" in too_big.json()


async def test_sessions_intents_vtxos_and_balances_after_a_real_transfer(api) -> None:
    gateway = api.gateway
    gw = gateway.identity.pubkey
    ark = gateway.components.backends["ark"]
    async with Wallet(api.relay_url, gw) as alice:
        await ark.board(alice.pubkey, 3_000)
        await ark.board(alice.pubkey, 4_000)
        bob = "ab" * 32
        intent = alice.intent("ark:transfer", transfer_params(bob, 1_000))
        outcome = await alice.run_ceremony(intent)
        assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
    action = json.loads(intent.content)["action_id"]

    by_npub = await api.get(f"/intents/{encode_npub(alice.pubkey)}/{action}")
    assert by_npub.status_code == 200
    found = by_npub.json()
    assert found["event_id"] == intent.id and found["type"] == "ark:transfer"
    assert found["state"] == "completed" and found["params"]["amount"] == 1_000
    assert (await api.get(f"/intents/{alice.pubkey}/{action}")).json() == found
    assert (await api.get(f"/intents/{alice.pubkey}/other")).status_code == 404

    session = (await api.get(f"/sessions/{found['session_id']}")).json()
    assert session["state"] == "completed" and session["author"] == alice.pubkey
    assert session["step_index"] == session["step_total"] == 2 and session["error_code"] is None

    # Two VTXOs were left to alice (change and the untouched one): one per page.
    first = (await api.get(f"/vtxos/{alice.pubkey}", params={"limit": 1})).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = (
        await api.get(f"/vtxos/{alice.pubkey}", params={"limit": 1, "cursor": first["next_cursor"]})
    ).json()
    everything = (await api.get(f"/vtxos/{encode_npub(alice.pubkey)}")).json()
    spendable = [v for v in everything["items"] if v["status"] == "spendable"]
    assert sorted(v["amount"] for v in spendable) == sorted([3_000 + 4_000 - 1_010 - 3_000, 3_000])
    assert first["items"][0]["vtxo_id"] < second["items"][0]["vtxo_id"]
    assert everything["next_cursor"] is None
    assert all(v["ticker"] == "gBTC" for v in everything["items"])

    balances = (await api.get(f"/balances/{alice.pubkey}")).json()
    assert balances["balances"] == [
        {"asset_id": gateway.engine.assets.gbtc.asset_id, "ticker": "gBTC", "amount": 5_990}
    ]
    bob_balances = (await api.get(f"/balances/{bob}")).json()["balances"]
    assert [b["amount"] for b in bob_balances] == [1_000]
    bad_cursor = await api.get(f"/vtxos/{alice.pubkey}", params={"cursor": "%%%"})
    assert bad_cursor.status_code == 400


async def test_a_lift_invoice_status_and_assets(api) -> None:
    gateway = api.gateway
    async with Wallet(api.relay_url, gateway.identity.pubkey) as wallet:
        reply = await wallet.call("lift_lightning", asset_id="gBTC", amount=2_000)
    payment_hash = reply["payment_hash"]
    status = (await api.get(f"/lightning/invoices/{payment_hash}")).json()
    assert status == {
        "payment_hash": payment_hash,
        "direction": "in",
        "state": "open",
        "amount_sat": 2_000,
        "asset_id": gateway.engine.assets.gbtc.asset_id,
        "expires_at": status["expires_at"],
        "updated_at": status["updated_at"],
    }
    gbtc = gateway.engine.assets.gbtc.asset_id
    assert (await api.get(f"/assets/{gbtc}")).json()["ticker"] == "gBTC"
    assert (await api.get("/assets/gbtc")).json()["asset_id"] == gbtc
    assert (await api.get("/assets/NOPE")).status_code == 404
    assert [a["asset_id"] for a in (await api.get("/assets")).json()] == [gbtc]


async def test_settlements_are_listed_and_paged(api) -> None:
    now = int(time.time())

    def add(db) -> None:
        for i in range(3):
            db.add(
                Settlement(
                    id=f"s-{i}",
                    strategy="test",
                    state="confirmed",
                    period_start=now - 3600 * (i + 1),
                    period_end=now - 3600 * i,
                    merkle_root="aa" * 32,
                    l1_txid="bb" * 32,
                    block_height=100 + i,
                    created_at=now,
                    updated_at=now,
                )
            )

    await api.gateway.engine.store.run(add)
    page = (await api.get("/settlements", params={"limit": 2})).json()
    assert [s["settlement_id"] for s in page["items"]] == ["s-2", "s-1"]
    rest = (await api.get("/settlements", params={"cursor": page["next_cursor"]})).json()
    assert [s["settlement_id"] for s in rest["items"]] == ["s-0"] and rest["next_cursor"] is None
    one = (await api.get("/settlements/s-1")).json()
    assert one["block_height"] == 101 and one["l1_txid"] == "bb" * 32
    # A row written with the columns' defaults: no leaves counted, no history, no error.
    assert (one["l2_tx_count"], one["confirmations"]) == (0, 0)
    assert one["history"] == [] and one["last_error"] is None
    assert (await api.get("/settlements/s-9")).status_code == 404


async def test_a_settlement_shows_its_history_confirmations_and_last_error(api) -> None:
    end = 1_767_225_600
    history = [
        {"state": "collecting", "at": end + 30, "note": "3 L2 transactions"},
        {"state": "committed", "at": end + 31, "note": f"broadcast {'cd' * 32} at 2 sat/vB"},
        {"state": "confirming", "at": end + 900, "note": "1/3 confirmations"},
    ]
    *txids, earlier = reference.txids(4, seed="read-api")

    def add(db) -> None:
        add_settlement(
            db,
            "anchor-1767225600",
            txids,
            state="confirming",
            confirmations=1,
            period_end=end,
            history=history,
            context={"sat_per_vbyte": 2, "last_error": "lnd GetTransactions: unavailable"},
        )
        add_settlement(db, "anchor-1767222000", [earlier], period_end=end - 3600)

    await api.gateway.engine.store.run(add)
    one = (await api.get("/settlements/anchor-1767225600")).json()
    assert one == {
        "settlement_id": "anchor-1767225600",
        "strategy": "anchor",
        "state": "confirming",
        "period_start": end - 3600,
        "period_end": end,
        "merkle_root": reference.root(sorted(txids)).hex(),
        "l1_txid": "cd" * 32,
        "block_height": 812_345,
        "l2_tx_count": 3,
        "confirmations": 1,
        "history": history,
        "last_error": "lnd GetTransactions: unavailable",
    }
    listed = (await api.get("/settlements")).json()["items"]
    assert [s["settlement_id"] for s in listed] == ["anchor-1767225600", "anchor-1767222000"]
    assert listed[0] == one
    older = listed[1]
    assert (older["l2_tx_count"], older["confirmations"], older["last_error"]) == (1, 3, None)
    assert older["history"] == [
        {"state": "published", "at": end - 3600, "note": "written by the test"}
    ]
