"""``arkrelay settlement verify``: a good proof and 31342 verify; each tampering fails with a
message naming its check; the event is also fetched from a real relay, and the proof from
a running gateway that published the event through its outbox."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
import trio
import trio_websocket
from click.testing import CliRunner, Result

from arkrelay_core.cli import cli
from arkrelay_core.nostr import (
    Event,
    compute_event_id,
    encode_event,
    encode_npub,
    generate_secret_key,
    sign_event,
    xonly_public_key,
)
from arkrelay_core.protocol import Kind
from arkrelay_core.settlement import merkle, rows
from arkrelay_core.settlement.proofcheck import expected_sides
from arkrelay_core.store.models import OutboxEvent
from plugins.nostr.tests.relay_process import NostrRelay, free_port
from tests.http.conftest import running_api
from tests.http.settlements import add_settlement

from . import reference

SETTLEMENT = "anchor-1767225600"
IDS = reference.txids(6, seed="verify")
TXID = sorted(IDS)[3]
L1_TXID = "5e" * 32
HEIGHT = 930_001


# --------------------------------------------------------------------------- inputs


def proof_for(txid: str = TXID, ids: list[str] = IDS, settlement: str = SETTLEMENT) -> dict:
    """What GET /settlements/{id}/proof/{txid} answers (built by the module, checked below
    against the reference)."""
    built = merkle.build_proof(ids, txid)
    return {
        "settlement_id": settlement,
        "ark_txid": txid,
        "index": built.index,
        "count": built.count,
        "path": [{"side": s.side, "hash": s.hash} for s in built.path],
        "merkle_root": built.merkle_root,
        "state": "published",
        "l1_txid": L1_TXID,
        "block_height": HEIGHT,
        "period_start": 1_767_222_000,
        "period_end": 1_767_225_600,
    }


def commitment(**changes: Any) -> dict:
    content = {
        "l1_txid": L1_TXID,
        "block_height": HEIGHT,
        "merkle_root_of_l2_txs": reference.root(IDS).hex(),
        "l2_tx_count": len(IDS),
        "period_start": 1_767_222_000,
        "period_end": 1_767_225_600,
    }
    content.update(changes)
    return content


def event_for(
    secret: bytes,
    content: Any = None,
    *,
    kind: int = Kind.L1_COMMITMENT,
    d: str = f"l1:{SETTLEMENT}",
) -> Event:
    text = content if isinstance(content, str) else json.dumps(content or commitment())
    return sign_event(secret, kind=kind, content=text, tags=[["d", d]])


@pytest.fixture(scope="module")
def secret() -> bytes:
    return generate_secret_key()


@pytest.fixture
def gateway(secret: bytes) -> str:
    return xonly_public_key(secret).hex()


def write(directory: Path, name: str, value: Any) -> Path:
    path = directory / name
    if isinstance(value, Event):
        path.write_bytes(encode_event(value))
    elif isinstance(value, bytes | str):
        path.write_text(value if isinstance(value, str) else value.decode())
    else:
        path.write_text(json.dumps(value))
    return path


def verify(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["settlement", "verify", *map(str, args)])


def run_files(directory: Path, proof: Any, event: Any, *extra: str) -> Result:
    proof_file = write(directory, "proof.json", proof)
    return verify("--proof", proof_file, "--event", write(directory, "ev.json", event), *extra)


# --------------------------------------------------------------------------- the good case


def test_the_proof_fixture_is_the_documented_tree() -> None:
    proof = proof_for()
    assert proof["merkle_root"] == reference.root(IDS).hex()
    assert [s["side"] for s in proof["path"]] == reference.sides(proof["index"], proof["count"])
    path = [(s["side"], bytes.fromhex(s["hash"])) for s in proof["path"]]
    assert reference.fold(TXID, path).hex() == proof["merkle_root"]


@pytest.mark.parametrize("count", range(1, 18))
def test_expected_sides_is_the_documented_shape(count: int) -> None:
    for index in range(count):
        assert expected_sides(index, count) == reference.sides(index, count)
    with pytest.raises(ValueError):
        expected_sides(count, count)


def test_a_good_proof_and_event_verify(tmp_path: Path, secret: bytes, gateway: str) -> None:
    event = event_for(secret)
    for key in (gateway, encode_npub(gateway)):
        result = run_files(tmp_path, proof_for(), event, "--gateway", key)
        assert result.exit_code == 0, result.output
        out = result.output
        assert out.startswith(f"verified: ark tx {TXID}\n")
        assert f"is leaf 3 of 6 of settlement {SETTLEMENT}" in out
        assert f"l1 txid       {L1_TXID}" in out and f"block height  {HEIGHT}" in out
        assert reference.root(IDS).hex() in out
        assert event.id in out and encode_npub(gateway) in out
        payload = "41524b5201" + reference.root(IDS).hex()
        assert f"OP_RETURN     {payload}" in out
        assert "not checked" not in out


def test_every_leaf_of_every_small_tree_verifies(tmp_path: Path, secret: bytes) -> None:
    for count in (1, 2, 3, 5, 8):
        ids = reference.txids(count, seed=f"cli{count}")
        event = event_for(
            secret, commitment(merkle_root_of_l2_txs=reference.root(ids).hex(), l2_tx_count=count)
        )
        for txid in ids:
            result = run_files(tmp_path, proof_for(txid, ids), event)
            assert result.exit_code == 0, (count, result.output)


def test_without_gateway_the_author_is_named_as_unchecked(tmp_path: Path, secret: bytes) -> None:
    result = run_files(tmp_path, proof_for(), event_for(secret))
    assert result.exit_code == 0, result.output
    assert "the author was not checked" in result.output


# --------------------------------------------------------------------------- tampering


def _flip(step: dict) -> dict:
    return {**step, "side": "left" if step["side"] == "right" else "right"}


def _tampered_event(secret: bytes) -> dict[str, Event]:
    good = event_for(secret)
    other_sig = event_for(secret, commitment(block_height=1)).sig
    return {
        "content changed after signing": msgspec.structs.replace(
            good, content=json.dumps(commitment(l1_txid="00" * 32))
        ),
        "signature of another event": msgspec.structs.replace(good, sig=other_sig),
    }


@pytest.mark.parametrize(
    ("what", "check"),
    [
        ("content changed after signing", "event id"),
        ("signature of another event", "event signature"),
    ],
)
def test_a_forged_event_fails(tmp_path: Path, secret: bytes, what: str, check: str) -> None:
    result = run_files(tmp_path, proof_for(), _tampered_event(secret)[what])
    assert result.exit_code == 1, result.output
    assert f"verification failed: {check}:" in result.output


@pytest.mark.parametrize(
    ("event_kw", "check", "says"),
    [
        ({"kind": Kind.CONFIRMATION}, "event kind", "31340, not 31342"),
        ({"d": "l1:anchor-1"}, "event d tag", f"'l1:anchor-1', expected 'l1:{SETTLEMENT}'"),
        ({"d": SETTLEMENT}, "event d tag", "expected"),
        ({"content": "{}"}, "event content", "not an L1 commitment"),
        ({"content": "not json"}, "event content", "not an L1 commitment"),
        ({"content": commitment(merkle_root_of_l2_txs="ab" * 32)}, "merkle root", "ab" * 32),
        ({"content": commitment(l2_tx_count=7)}, "l2_tx_count", "7 transactions"),
    ],
)
def test_a_wrong_event_fails(
    tmp_path: Path, secret: bytes, event_kw: dict, check: str, says: str
) -> None:
    event = event_for(secret, **event_kw)
    result = run_files(tmp_path, proof_for(), event)
    assert result.exit_code == 1, result.output
    assert f"verification failed: {check}:" in result.output and says in result.output


def test_an_event_by_another_key_fails(tmp_path: Path, gateway: str) -> None:
    impostor = event_for(generate_secret_key())
    result = run_files(tmp_path, proof_for(), impostor, "--gateway", gateway)
    assert result.exit_code == 1
    assert f"verification failed: event author: {impostor.pubkey} is not the gateway" in (
        result.output
    )


def _proof_tamperings() -> dict[str, tuple[dict, str]]:
    good = proof_for()
    path = good["path"]
    other = sorted(IDS)[2]
    changed = bytearray.fromhex(path[1]["hash"])
    changed[0] ^= 1
    wrong = {**path[1], "hash": changed.hex()}
    return {
        "flipped side": ({**good, "path": [_flip(path[0]), *path[1:]]}, "proof shape"),
        "wrong hash": ({**good, "path": [path[0], wrong, *path[2:]]}, "proof path"),
        "extra step": ({**good, "path": [*path, path[0]]}, "proof shape"),
        "missing step": ({**good, "path": path[:-1]}, "proof shape"),
        "other txid": ({**good, "ark_txid": other}, "proof path"),
        "txid of no leaf": ({**good, "ark_txid": "ab" * 32}, "proof path"),
        "other index": ({**good, "index": 2}, "proof shape"),
        "index past count": ({**good, "index": 6}, "proof shape"),
        "other count": ({**good, "count": 7}, "l2_tx_count"),
        "other root": ({**good, "merkle_root": "cd" * 32}, "merkle root"),
        "other settlement": ({**good, "settlement_id": "anchor-1"}, "event d tag"),
        "not a proof": ({"settlement_id": SETTLEMENT}, "proof"),
        "upper-case hash": (
            {**good, "path": [{**path[0], "hash": path[0]["hash"].upper()}, *path[1:]]},
            "proof",
        ),
    }


@pytest.mark.parametrize("what", list(_proof_tamperings()))
def test_a_tampered_proof_fails(tmp_path: Path, secret: bytes, gateway: str, what: str) -> None:
    proof, check = _proof_tamperings()[what]
    result = run_files(tmp_path, proof, event_for(secret), "--gateway", gateway)
    assert result.exit_code == 1, result.output
    assert f"verification failed: {check}:" in result.output, result.output
    assert "verified:" not in result.output


def test_garbage_inputs_fail_with_their_names(tmp_path: Path, secret: bytes) -> None:
    result = run_files(tmp_path, b"\x00not json", event_for(secret))
    assert result.exit_code == 1 and "verification failed: proof:" in result.output
    result = run_files(tmp_path, proof_for(), "{}")
    assert result.exit_code == 1 and "verification failed: event:" in result.output


# --------------------------------------------------------------------------- usage and inputs


def test_usage_errors(tmp_path: Path, secret: bytes, gateway: str) -> None:
    proof = write(tmp_path, "proof.json", proof_for())
    event = write(tmp_path, "ev.json", event_for(secret))
    for args, says in (
        (["--proof", proof], "either with --event FILE or with --relay URL"),
        (["--proof", proof, "--event", event, "--relay", "ws://x"], "either"),
        (["--proof", proof, "--relay", "ws://127.0.0.1:1"], "--relay needs --gateway"),
        (["--proof", proof, "--event", event, "--gateway", "npub1nope"], "--gateway"),
        (["--proof", proof, "--relay", "http://x", "--gateway", gateway], "ws://"),
    ):
        result = verify(*args)
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output, result.output


def closed_port() -> int:
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


def test_unavailable_inputs_exit_3(tmp_path: Path, secret: bytes, gateway: str) -> None:
    event = write(tmp_path, "ev.json", event_for(secret))
    proof = write(tmp_path, "proof.json", proof_for())
    port = closed_port()
    for args, says in (
        (["--proof", tmp_path / "absent.json", "--event", event], "cannot read the proof"),
        (["--proof", proof, "--event", tmp_path / "absent.json"], "cannot read the event"),
        (["--proof", f"http://127.0.0.1:{port}/p", "--event", event], "cannot fetch"),
        (
            ["--proof", proof, "--relay", f"ws://127.0.0.1:{port}", "--gateway", gateway],
            "cannot query",
        ),
    ):
        result = verify(*args)
        assert result.exit_code == 3, (args, result.output)
        assert says in result.output, result.output


def test_a_silent_server_is_given_up_at_the_deadline(tmp_path: Path, secret: bytes) -> None:
    """A peer that accepts the connection and never answers costs --timeout, not forever."""
    event = write(tmp_path, "ev.json", event_for(secret))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        for args in (
            ["--proof", f"http://127.0.0.1:{port}/p", "--event", event],
            [
                "--proof",
                write(tmp_path, "proof.json", proof_for()),
                "--relay",
                f"ws://127.0.0.1:{port}",
                "--gateway",
                xonly_public_key(secret).hex(),
            ],
        ):
            result = verify(*args, "--timeout", "0.5")
            assert result.exit_code == 3, result.output
            assert "did not answer within 0.5s" in result.output


# --------------------------------------------------------------------------- a real relay


async def publish(relay_url: str, *events: Event) -> None:
    with trio.fail_after(30):
        async with trio_websocket.open_websocket_url(relay_url) as ws:
            for event in events:
                await ws.send_message(json.dumps(["EVENT", msgspec.to_builtins(event)]))
                while True:
                    frame = json.loads(await ws.get_message())
                    if frame[0] == "OK" and frame[1] == event.id:
                        assert frame[2] is True, frame
                        break


@pytest.fixture
def relay(tmp_path: Path):
    running = NostrRelay(tmp_path / "relay")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_the_event_is_fetched_from_a_relay(
    tmp_path: Path, relay: NostrRelay, secret: bytes, gateway: str
) -> None:
    ours = event_for(secret)
    # Another key's 31342 with the same d tag and a root that would not verify: the query
    # asks for the gateway's events only.
    decoy = event_for(generate_secret_key(), commitment(merkle_root_of_l2_txs="ab" * 32))
    other = event_for(secret, d="l1:anchor-1")
    trio.run(publish, relay.url, ours, decoy, other)
    proof = write(tmp_path, "proof.json", proof_for())
    result = verify("--proof", proof, "--relay", relay.url, "--gateway", encode_npub(gateway))
    assert result.exit_code == 0, result.output
    assert ours.id in result.output

    missing = write(tmp_path, "missing.json", proof_for(settlement="anchor-2"))
    result = verify("--proof", missing, "--relay", relay.url, "--gateway", gateway)
    assert result.exit_code == 3, result.output
    assert f"has no 31342 by {gateway} with d = l1:anchor-2" in result.output

    # The relay holds a bad announcement for this settlement: it is found and refused.
    bad = event_for(secret, commitment(l2_tx_count=99), d="l1:anchor-3")
    trio.run(publish, relay.url, bad)
    three = write(tmp_path, "three.json", proof_for(settlement="anchor-3"))
    result = verify("--proof", three, "--relay", relay.url, "--gateway", gateway)
    assert result.exit_code == 1 and "verification failed: l2_tx_count:" in result.output


async def test_a_relay_answer_is_not_trusted(tmp_path: Path, secret: bytes, gateway: str) -> None:
    """A relay that ignores the filter and serves a forged copy: the genuine announcement
    of the proof's settlement is still the one checked."""
    genuine = event_for(secret)
    later = genuine.created_at + 60
    other_settlement = sign_event(
        secret,
        kind=Kind.L1_COMMITMENT,
        content=json.dumps(commitment()),
        tags=[["d", "l1:anchor-1"]],
        created_at=later,
    )
    forged_content = json.dumps(commitment(merkle_root_of_l2_txs="ab" * 32))
    forged = Event(
        id=compute_event_id(
            gateway, later, Kind.L1_COMMITMENT, [["d", f"l1:{SETTLEMENT}"]], forged_content
        ),
        pubkey=gateway,
        created_at=later,
        kind=Kind.L1_COMMITMENT,
        tags=[["d", f"l1:{SETTLEMENT}"]],
        content=forged_content,
        sig="00" * 64,
    )
    stranger = event_for(generate_secret_key())

    async def serve(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        frame = json.loads(await ws.get_message())
        assert frame[0] == "REQ" and frame[2]["#d"] == [f"l1:{SETTLEMENT}"]
        for event in (other_settlement, forged, stranger, genuine):
            await ws.send_message(json.dumps(["EVENT", frame[1], msgspec.to_builtins(event)]))
        await ws.send_message(json.dumps(["EOSE", frame[1]]))
        with trio.move_on_after(5):
            await ws.get_message()  # the CLOSE

    proof = write(tmp_path, "proof.json", proof_for())
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(trio_websocket.serve_websocket, ssl_context=None),
                serve,
                "127.0.0.1",
                0,
            )
            url = f"ws://127.0.0.1:{server.port}"
            result = await trio.to_thread.run_sync(
                verify, "--proof", proof, "--relay", url, "--gateway", gateway
            )
            nursery.cancel_scope.cancel()
    assert result.exit_code == 0, result.output
    assert f"31342 {genuine.id}" in result.output


# --------------------------------------------------------------------------- end to end


async def test_a_gateway_published_commitment_verifies_from_its_api_and_relay(
    tmp_path: Path,
) -> None:
    """The proof from GET /settlements/{id}/proof/{txid}, the 31342 that the settlement
    rows published through the outbox, fetched from the gateway's own relay endpoint."""
    ids = reference.txids(7, seed="e2e")
    settlement_id = "anchor-1767229200"
    with trio.fail_after(120):
        async with running_api(tmp_path / "gw") as api:
            gateway = api.gateway
            store = gateway.engine.store
            await store.run(
                lambda db: add_settlement(
                    db, settlement_id, ids, state="confirmed", period_end=1_767_229_200
                )
            )
            publish_now = functools.partial(
                rows.publish, identity=gateway.identity, now=int(time.time())
            )
            _, event = await store.run(publish_now, settlement_id)
            gateway.outbox.notify()

            def acked(db: Any) -> bool:
                row = db.scalar(sa.select(OutboxEvent).where(OutboxEvent.event_id == event.id))
                return row is not None and row.acked_at is not None

            # The outbox publishes in its own task; the test's deadline bounds the wait.
            while True:
                if await store.run(acked):
                    break
                await trio.sleep(0.1)

            txid = sorted(ids)[4]
            command = [
                sys.executable,
                "-c",
                "from arkrelay_core.cli import main; main()",
                "settlement",
                "verify",
                "--proof",
                f"{api.url}/settlements/{settlement_id}/proof/{txid}",
                "--relay",
                api.relay_url,
                "--gateway",
                encode_npub(gateway.identity.pubkey),
                "--timeout",
                "20",
            ]
            done = await trio.run_process(
                command,
                capture_stdout=True,
                stderr=subprocess.STDOUT,
                check=False,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            output = done.stdout.decode()
            assert done.returncode == 0, output
            assert f"verified: ark tx {txid}" in output
            assert f"is leaf 4 of 7 of settlement {settlement_id}" in output
            assert f"31342 {event.id}" in output

            unknown = [*command]
            unknown[command.index("--proof") + 1] = (
                f"{api.url}/settlements/{settlement_id}/proof/{'00' * 32}"
            )
            done = await trio.run_process(
                unknown, capture_stdout=True, stderr=subprocess.STDOUT, check=False
            )
            assert done.returncode == 3
            assert f"answered 404: settlement {settlement_id} does not commit to" in (
                done.stdout.decode()
            )
