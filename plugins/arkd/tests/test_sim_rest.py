"""The simulator's arkd REST interface, over real HTTP on loopback.

The same simulator also serves gRPC: answers are compared with the gRPC ones, and state
changed through one interface is seen through the other. Shapes are arkd v0.9.15's
gateway's (meshapi/grpc-api-gateway: protojson with unpopulated fields emitted, SSE
streams, google.rpc.Status error bodies carrying ark.v1.ErrorDetails).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
import trio
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from arkrelay_arkd import offchain
from arkrelay_arkd._proto.ark.v1 import indexer_pb2, service_pb2, service_pb2_grpc
from arkrelay_arkd.client import ArkdBackend
from arkrelay_arkd.convert import server_params
from arkrelay_arkd.sim import ArkdSimulator
from arkrelay_arkd.sim.routes import ARKD_ROUTES
from arkrelay_core.interfaces import InputSignature, TxOutputSpec

from .conftest import Key

SSE = {"accept": "text/event-stream"}


@pytest.fixture
async def rest(sim: ArkdSimulator, nursery: trio.Nursery) -> AsyncIterator[httpx.AsyncClient]:
    url = await nursery.start(sim.serve_rest, 0)
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


def _sign(key: Key, to_sign: Any) -> list[InputSignature]:
    return [InputSignature(s.input_index, key.pub, key.sign(s.sighash)) for s in to_sign]


async def _signed_transfer(
    backend: ArkdBackend, owner: Key, to: Key, amount: int, vtxo: Any = None
) -> tuple[str, list[str], Any]:
    if vtxo is None:
        (vtxo,) = await backend.list_vtxos(owner.pub)
    built = await backend.build_offchain_tx([vtxo], [TxOutputSpec(to.pub, amount)])
    signed = backend.add_signatures(built.ark_tx, _sign(owner, built.to_sign))
    return signed, list(built.checkpoint_txs), vtxo


async def _params(rest: httpx.AsyncClient) -> Any:
    info = (await rest.get("/v1/info")).json()
    return server_params(json_format.ParseDict(info, service_pb2.GetInfoResponse()))


async def _submit(rest: httpx.AsyncClient, signed: str, checkpoints: list[str]) -> httpx.Response:
    return await rest.post(
        "/v1/tx/submit", json={"signedArkTx": signed, "checkpointTxs": checkpoints}
    )


async def _finalize(
    rest: httpx.AsyncClient, backend: ArkdBackend, key: Key, answer: dict[str, Any]
) -> None:
    """Sign the checkpoints of a SubmitTx (or GetPendingTx) answer and finalize over REST."""
    submitted = offchain.check_submission(
        await _params(rest), json_format.ParseDict(answer, service_pb2.SubmitTxResponse())
    )
    finals = [backend.add_signatures(t.psbt, _sign(key, [t])) for t in submitted.to_sign]
    done = await rest.post(
        "/v1/tx/finalize", json={"arkTxid": answer["arkTxid"], "finalCheckpointTxs": finals}
    )
    assert (done.status_code, done.json()) == (200, {}), done.text


async def _transfer(
    rest: httpx.AsyncClient, backend: ArkdBackend, owner: Key, to: Key, amount: int
) -> str:
    signed, checkpoints, _ = await _signed_transfer(backend, owner, to, amount)
    answer = await _submit(rest, signed, checkpoints)
    assert answer.status_code == 200, answer.text
    await _finalize(rest, backend, owner, answer.json())
    return answer.json()["arkTxid"]


async def _sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event name, decoded data) for each SSE frame."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                text = "\n".join(data)
                yield event, json.loads(text) if text else None
            event, data = "message", []
        elif line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") or line == "data:":
            data.append(line[len("data: ") :])


# ---------------------------------------------------------------------------- routes


def test_every_rpc_has_a_route_and_every_binding_names_a_field() -> None:
    services = {
        "ArkService": service_pb2.DESCRIPTOR.services_by_name["ArkService"],
        "IndexerService": indexer_pb2.DESCRIPTOR.services_by_name["IndexerService"],
    }
    routed = {(r.service, r.rpc) for r in ARKD_ROUTES}
    every = {(name, m.name) for name, s in services.items() for m in s.methods}
    assert routed == every
    for route in ARKD_ROUTES:
        request = route.request_type()
        for binding in route.bindings:
            owner = request.DESCRIPTOR
            for part in binding.split("."):
                field = owner.fields_by_name[part]
                owner = field.message_type
        # A streaming RPC is a GET without a body, as the gateway serves streams.
        assert not (route.streaming and route.body)


# ---------------------------------------------------------------------------- GetInfo


async def test_get_info_is_the_grpc_answer_in_the_gateway_json(
    sim: ArkdSimulator, rest: httpx.AsyncClient
) -> None:
    response = await rest.get("/v1/info")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()

    channel = grpc.insecure_channel(sim.target)
    try:
        expected = service_pb2_grpc.ArkServiceStub(channel).GetInfo(
            service_pb2.GetInfoRequest(), timeout=5
        )
    finally:
        channel.close()

    fields = service_pb2.GetInfoResponse.DESCRIPTOR.fields
    # Every field, set or not, under its lowerCamel JSON name (EmitUnpopulated).
    assert set(body) == {f.json_name for f in fields if f.containing_oneof is None}
    for field in fields:
        value = getattr(expected, field.name)
        got = body[field.json_name]
        if field.is_repeated and field.message_type is not None:
            assert isinstance(got, (list, dict)), field.name
        elif field.message_type is not None:
            # An unset message is null, as Go's protojson writes it.
            assert got is None if not expected.HasField(field.name) else isinstance(got, dict)
        elif field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64):
            assert got == str(value), field.name  # 64-bit integers are strings
        else:
            assert got == value, field.name
    assert json_format.ParseDict(body, service_pb2.GetInfoResponse()) == expected
    # arkd's default delay (86400 s), used as arkd uses it: rounded down to 512 s steps.
    assert body["unilateralExitDelay"] == "86016" and body["network"] == "regtest"


# ---------------------------------------------------------------------------- ark txs


async def test_submit_pending_and_finalize_round_trip_over_rest(
    sim: ArkdSimulator, rest: httpx.AsyncClient, backend: ArkdBackend
) -> None:
    alice, bob = Key(), Key()
    sim.board(alice.pub, 20_000)
    signed, checkpoints, vtxo = await _signed_transfer(backend, alice, bob, 20_000)

    answer = await _submit(rest, signed, checkpoints)
    assert answer.status_code == 200, answer.text
    submitted = answer.json()
    assert set(submitted) == {"arkTxid", "finalArkTx", "signedCheckpointTxs"}
    assert submitted["arkTxid"] == offchain.decode_txid(signed)

    # The answer is lost; the owner proves the VTXO is theirs and gets it back.
    proof = await backend.build_ownership_proof([vtxo], expire_at=int(time.time()) + 120)
    intent = {
        "proof": backend.add_proof_signatures(proof, _sign(alice, proof.to_sign)),
        "message": proof.message,
    }
    pending = await rest.post("/v1/tx/pending", json={"intent": intent})
    assert pending.status_code == 200, pending.text
    [found] = pending.json()["pendingTxs"]
    assert found["arkTxid"] == submitted["arkTxid"]
    assert sorted(found["signedCheckpointTxs"]) == sorted(submitted["signedCheckpointTxs"])

    await _finalize(rest, backend, alice, found)
    # Seen through gRPC too: one ledger behind both interfaces.
    [received] = await backend.list_vtxos(bob.pub)
    assert (received.amount, received.vtxo_id) == (20_000, f"{submitted['arkTxid']}:0")
    assert (await rest.post("/v1/tx/pending", json={"intent": intent})).json() == {"pendingTxs": []}


async def test_a_double_spend_is_refused_with_arkd_error_details(
    sim: ArkdSimulator, rest: httpx.AsyncClient, backend: ArkdBackend
) -> None:
    alice, bob, carol = Key(), Key(), Key()
    sim.board(alice.pub, 10_000)
    signed, checkpoints, vtxo = await _signed_transfer(backend, alice, bob, 10_000)
    assert (await _submit(rest, signed, checkpoints)).status_code == 200

    other, other_checkpoints, _ = await _signed_transfer(backend, alice, carol, 10_000, vtxo)
    refused = await _submit(rest, other, other_checkpoints)
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/json"
    body = refused.json()
    assert body["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    [details] = body["details"]
    assert details == {
        "@type": "type.googleapis.com/ark.v1.ErrorDetails",
        "code": 6,
        "name": "VTXO_ALREADY_SPENT",
        "message": f"{vtxo.vtxo_id} already spent",
        "metadata": {"vtxo_outpoint": vtxo.vtxo_id},
    }
    assert body["message"] == details["message"]


async def test_bad_requests_unknown_routes_and_unimplemented_rpcs(
    rest: httpx.AsyncClient,
) -> None:
    unimplemented = await rest.get("/v1/indexer/asset/abcd")
    assert unimplemented.status_code == 501
    assert unimplemented.json() == {"code": 12, "message": "Method not implemented!", "details": []}

    assert (await rest.get("/v1/nowhere")).json() == {
        "code": 5,
        "message": "Not Found",
        "details": [],
    }
    wrong_method = await rest.get("/v1/tx/submit")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, 12)

    not_json = await rest.post("/v1/tx/submit", content=b"{not json")
    assert (not_json.status_code, not_json.json()["code"]) == (400, 3)
    # Not base64 of a PSBT; a PSBT whose unsigned tx does not parse (the SDK found it).
    for junk in ("AAAA", "cHNidP8BAAoCAAAAAAAAAAAAAAA="):
        bad_psbt = await rest.post("/v1/tx/submit", json={"signedArkTx": junk})
        assert bad_psbt.status_code == 400
        assert bad_psbt.json()["details"][0]["name"] == "INVALID_ARK_PSBT"

    # A stream needs an SSE client: the gateway answers others as unimplemented.
    no_sse = await rest.get("/v1/txs")
    assert (no_sse.status_code, no_sse.json()["message"]) == (501, "Streaming Method Not Allowed")


# ---------------------------------------------------------------------------- indexer


async def test_get_vtxos_filters_from_query_parameters(
    sim: ArkdSimulator, rest: httpx.AsyncClient, backend: ArkdBackend
) -> None:
    alice, bob = Key(), Key()
    sim.board(alice.pub, 30_000)
    ark_txid = await _transfer(rest, backend, alice, bob, 30_000)
    sim.board(alice.pub, 5_000)
    sim.board(bob.pub, 7_000)
    a, b = sim.script_of(alice.pub), sim.script_of(bob.pub)

    async def vtxos(query: str) -> list[dict[str, Any]]:
        response = await rest.get(f"/v1/indexer/vtxos?{query}")
        assert response.status_code == 200, response.text
        return response.json()["vtxos"]

    def amounts(found: list[dict[str, Any]]) -> list[str]:
        return sorted(v["amount"] for v in found)

    assert amounts(await vtxos(f"scripts={a}")) == ["30000", "5000"]
    assert amounts(await vtxos(f"scripts={a}&spendableOnly=true")) == ["5000"]
    [spent] = await vtxos(f"scripts={a}&spentOnly=true")
    assert (spent["isSpent"], spent["arkTxid"], spent["amount"]) == (True, ark_txid, "30000")
    assert amounts(await vtxos(f"scripts={a}&scripts={b}&spendable_only=1")) == [
        "30000",
        "5000",
        "7000",
    ]
    # Many scripts at once (a wallet's every address): a long query string is fine.
    many = "&".join(f"scripts=5120{i:064x}" for i in range(300))
    assert amounts(await vtxos(f"{many}&scripts={b}")) == ["30000", "7000"]
    [received] = await vtxos(f"outpoints={ark_txid}:0")
    assert (received["script"], received["isPreconfirmed"]) == (b, True)
    assert await vtxos(f"scripts={a}&pendingOnly=true") == []
    assert await vtxos(f"scripts={a}&recoverableOnly=true") == []
    # after/before are milliseconds on the VTXO's last change (arkd's vtxo.updated_at), as
    # the SDK's delta sync sends them.
    now_ms = int(time.time() * 1000)
    assert amounts(await vtxos(f"scripts={a}&after={now_ms + 3_600_000}")) == []
    assert amounts(await vtxos(f"scripts={a}&after={now_ms - 60_000}")) == amounts(
        await vtxos(f"scripts={a}")
    )
    assert amounts(await vtxos(f"scripts={a}")) != []

    paged = await rest.get(f"/v1/indexer/vtxos?scripts={a}&scripts={b}&page.size=2&page.index=2")
    assert paged.json()["page"] == {"current": 2, "next": 2, "total": 2}
    assert len(paged.json()["vtxos"]) == 2
    assert (await rest.get(f"/v1/indexer/vtxos?scripts={a}")).json()["page"] is None

    for query, message in [
        (
            f"scripts={a}&outpoints={ark_txid}:0",
            "outpoints and scripts filters are mutually exclusive",
        ),
        ("spendableOnly=true", "missing outpoints or scripts filter"),
        (f"scripts={a}&spendableOnly=true&spentOnly=true", "mutually exclusive"),
        (f"scripts={a}&page.index=1", "invalid page size"),
        ("scripts=0014" + "00" * 20, "invalid script, must be P2TR"),
        (f"scripts={a}&spendableOnly=maybe", "spendable_only"),
    ]:
        refused = await rest.get(f"/v1/indexer/vtxos?{query}")
        assert refused.status_code == 400, query
        assert message in refused.json()["message"], (query, refused.json())


async def test_chain_virtual_txs_and_commitment_of_a_transfer(
    sim: ArkdSimulator, rest: httpx.AsyncClient, backend: ArkdBackend
) -> None:
    alice, bob = Key(), Key()
    boarded = sim.board(alice.pub, 12_000)
    ark_txid = await _transfer(rest, backend, alice, bob, 12_000)

    chain = (await rest.get(f"/v1/indexer/vtxo/{ark_txid}/0/chain")).json()
    types = [c["type"] for c in chain["chain"]]
    assert types == [
        "INDEXER_CHAINED_TX_TYPE_ARK",
        "INDEXER_CHAINED_TX_TYPE_CHECKPOINT",
        "INDEXER_CHAINED_TX_TYPE_COMMITMENT",
    ]
    ark, checkpoint, commitment = chain["chain"]
    assert ark["txid"] == ark_txid and ark["spends"] == [checkpoint["txid"]]
    assert checkpoint["spends"] == [boarded.outpoint]
    assert commitment["txid"] == boarded.txid

    [created] = (await rest.get(f"/v1/indexer/vtxos?outpoints={ark_txid}:0")).json()["vtxos"]
    assert created["commitmentTxids"] == [boarded.txid]  # the batch its input rests on

    txs = (await rest.get(f"/v1/indexer/virtualTx/{ark_txid},{checkpoint['txid']}")).json()
    assert [offchain.decode_txid(tx) for tx in txs["txs"]] == [ark_txid, checkpoint["txid"]]

    batch = (await rest.get(f"/v1/indexer/commitmentTx/{boarded.txid}")).json()
    assert batch["batches"]["0"]["totalOutputAmount"] == "12000"
    assert (batch["totalOutputVtxos"], batch["totalOutputAmount"]) == (1, "12000")
    unknown = await rest.get(f"/v1/indexer/commitmentTx/{'ab' * 32}")
    assert (unknown.status_code, unknown.json()["message"]) == (500, "batch not found")


# ---------------------------------------------------------------------------- streams


async def test_the_txs_stream_delivers_events_as_server_sent_events(
    sim: ArkdSimulator, rest: httpx.AsyncClient, backend: ArkdBackend
) -> None:
    alice, bob = Key(), Key()
    with trio.fail_after(20):
        async with rest.stream("GET", "/v1/txs", headers=SSE) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            events = _sse_events(response)
            boarded = sim.board(alice.pub, 9_000)
            name, data = await anext(events)
            assert name == "message"
            [vtxo] = data["commitmentTx"]["spendableVtxos"]
            assert (vtxo["outpoint"], vtxo["amount"]) == (
                {"txid": boarded.txid, "vout": 0},
                "9000",
            )
            ark_txid = await _transfer(rest, backend, alice, bob, 9_000)
            name, data = await anext(events)
            assert data["arkTx"]["txid"] == ark_txid
            assert [v["outpoint"]["txid"] for v in data["arkTx"]["spentVtxos"]] == [boarded.txid]
            [cp] = data["arkTx"]["checkpointTxs"].values()
            assert set(cp) == {"txid", "tx"}
            await events.aclose()


async def test_a_script_subscription_streams_its_scripts_events(
    sim: ArkdSimulator, rest: httpx.AsyncClient
) -> None:
    alice, bob = Key(), Key()
    script = sim.script_of(alice.pub)
    made = await rest.post("/v1/indexer/script/subscribe", json={"scripts": [script]})
    sub_id = made.json()["subscriptionId"]
    with trio.fail_after(20):
        async with rest.stream(
            "GET", f"/v1/indexer/script/subscription/{sub_id}", headers=SSE
        ) as response:
            assert response.status_code == 200
            events = _sse_events(response)
            sim.board(bob.pub, 4_000)  # not subscribed: no event
            boarded = sim.board(alice.pub, 6_000)
            _, data = await anext(events)
            assert data["event"]["scripts"] == [script]
            assert [v["outpoint"]["txid"] for v in data["event"]["newVtxos"]] == [boarded.txid]
            await events.aclose()

    gone = await rest.post("/v1/indexer/script/unsubscribe", json={"subscriptionId": sub_id})
    assert gone.status_code == 200
    missing = await rest.get(f"/v1/indexer/script/subscription/{sub_id}", headers=SSE)
    assert missing.status_code == 404
    assert missing.json()["details"][0]["name"] == "SUBSCRIPTION_NOT_FOUND"


async def test_a_stream_ends_when_its_client_leaves(
    sim: ArkdSimulator, rest: httpx.AsyncClient
) -> None:
    with trio.fail_after(20):
        async with rest.stream("GET", "/v1/txs", headers=SSE) as response:
            assert response.status_code == 200
            await _until(lambda: bool(sim.ledger._subscribers))
        # The servicer's thread noticed and unsubscribed from the ledger.
        await _until(lambda: not sim.ledger._subscribers)


async def test_a_stream_the_server_ends_closes_with_the_gateways_eos_frame(
    sim: ArkdSimulator, rest: httpx.AsyncClient
) -> None:
    with trio.fail_after(20):
        async with rest.stream("GET", "/v1/txs", headers=SSE) as response:
            await _until(lambda: bool(sim.ledger._subscribers))
            sim.ledger.close_subscribers()  # as when the server stops
            frames = [line async for line in response.aiter_lines()]
    assert frames == ["id: EOS", "event: EOS", "data: ", ""]


async def _until(condition: Any) -> None:
    for _ in range(2000):
        if condition():
            return
        await trio.sleep(0.01)
    raise AssertionError("condition never met")
