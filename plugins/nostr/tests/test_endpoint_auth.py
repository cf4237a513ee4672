"""NIP-42 on the endpoint: the AUTH flow, and who may read the encrypted kinds under it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from arkrelay_core.nostr import generate_secret_key, sign_event
from arkrelay_core.protocol import Kind

from .endpoint_harness import Client, as_json, connect, endpoint_running, pubkey_of

ALICE = generate_secret_key()
BOB = generate_secret_key()


def auth_event(secret: bytes, challenge: str, relay: str, **overrides):
    fields = {
        "kind": 22242,
        "content": "",
        "tags": [["relay", relay], ["challenge", challenge]],
        "created_at": int(time.time()),
    }
    fields.update(overrides)
    return sign_event(secret, **fields)


async def authenticate(client: Client, secret: bytes, url: str) -> str:
    """Read the challenge the relay sends on connect, answer it; returns the challenge."""
    verb, challenge = await client.recv()
    assert verb == "AUTH"
    event = auth_event(secret, challenge, url)
    await client.send("AUTH", as_json(event))
    assert await client.expect("OK") == ["OK", event.id, True, ""]
    return challenge


async def test_auth_is_asked_for_then_events_and_reqs_are_allowed(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, require_auth=True) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        verb, challenge = await client.recv()
        assert verb == "AUTH" and len(challenge) >= 16
        note = sign_event(ALICE, kind=1, content="hi")
        refused = await client.publish(note)
        assert refused[:3] == ["OK", note.id, False]
        assert refused[3].startswith("auth-required:")
        await client.send("REQ", "early", {"kinds": [1]})
        closed = await client.expect("CLOSED")
        assert closed[1] == "early" and closed[2].startswith("auth-required:")

        event = auth_event(ALICE, challenge, endpoint.url + "/")
        await client.send("AUTH", as_json(event))
        assert await client.expect("OK") == ["OK", event.id, True, ""]
        assert await client.publish(note) == ["OK", note.id, True, ""]
        assert await client.req("now", {"kinds": [1]}) == [as_json(note)]
        # AUTH events are neither stored nor relayed.
        assert await client.req("auth", {"kinds": [22242]}) == []


@pytest.mark.parametrize(
    "problem",
    ["challenge", "relay", "not a url", "too old", "in the future", "kind", "signature"],
)
async def test_a_wrong_auth_event_is_refused(tmp_path: Path, problem: str) -> None:
    async with endpoint_running(tmp_path, require_auth=True) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        _, challenge = await client.recv()
        now = int(time.time())
        relay = endpoint.url
        event = {
            "challenge": lambda: auth_event(ALICE, "not-the-challenge", relay),
            "relay": lambda: auth_event(ALICE, challenge, "ws://elsewhere.example"),
            "not a url": lambda: auth_event(ALICE, challenge, "ws://[unclosed"),
            "too old": lambda: auth_event(ALICE, challenge, relay, created_at=now - 700),
            "in the future": lambda: auth_event(ALICE, challenge, relay, created_at=now + 700),
            "kind": lambda: auth_event(ALICE, challenge, relay, kind=22243),
            "signature": lambda: auth_event(ALICE, challenge, relay),
        }[problem]()
        body = as_json(event)
        if problem == "signature":
            body["sig"] = "0" * 128
        await client.send("AUTH", body)
        answer = await client.expect("OK")
        assert answer[:3] == ["OK", event.id, False]
        assert answer[3].startswith("invalid:")
        assert (await client.publish(sign_event(ALICE, kind=1, content="x")))[3].startswith(
            "auth-required:"
        )


async def test_auth_accepts_the_public_url(tmp_path: Path) -> None:
    public = "wss://gateway.example/relay"
    async with endpoint_running(tmp_path, require_auth=True, public_url=public) as (
        nursery,
        endpoint,
    ):
        client = await connect(nursery, endpoint.url)
        await authenticate(client, ALICE, "WSS://Gateway.Example/relay/")


async def _gateway_answers(endpoint, alice: str, bob: str):
    """Encrypted answers to Alice and to Bob, a public confirmation, as the gateway sends."""
    to_alice = endpoint.sign_as_gateway(
        int(Kind.SERVICE_RESPONSE), "ciphertext-a", [["p", alice], ["d", "resp:a"]]
    )
    to_bob = endpoint.sign_as_gateway(
        int(Kind.SERVICE_RESPONSE), "ciphertext-b", [["p", bob], ["d", "resp:b"]]
    )
    public = endpoint.sign_as_gateway(int(Kind.CONFIRMATION), "{}", [["p", alice], ["d", "c"]])
    for event in (to_alice, to_bob, public):
        assert (await endpoint.transport.publish(event)).accepted
    return to_alice, to_bob, public


async def test_under_auth_encrypted_kinds_go_only_to_their_parties(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, require_auth=True) as (nursery, endpoint):
        alice, bob = pubkey_of(ALICE), pubkey_of(BOB)
        to_alice, to_bob, public = await _gateway_answers(endpoint, alice, bob)
        alice_client = await connect(nursery, endpoint.url)
        await authenticate(alice_client, ALICE, endpoint.url)
        everything = {"authors": [endpoint.gateway_pubkey]}
        got = await alice_client.req("mine", everything)
        assert {e["id"] for e in got} == {to_alice.id, public.id}
        # Asking by id or by p tag does not get around it.
        assert await alice_client.req("peek", {"ids": [to_bob.id]}) == []
        assert await alice_client.req("peek2", {"#p": [bob]}) == []

        # Bob's own request (he authored it) is his to read back.
        bob_client = await connect(nursery, endpoint.url)
        await authenticate(bob_client, BOB, endpoint.url)
        request = sign_event(
            BOB, kind=int(Kind.SERVICE_REQUEST), content="c", tags=[["p", endpoint.gateway_pubkey]]
        )
        assert (await bob_client.publish(request))[2] is True
        assert [e["id"] for e in await bob_client.req("own", {"authors": [bob]})] == [request.id]
        assert await alice_client.req("bobs", {"authors": [bob]}) == []


async def test_under_auth_live_encrypted_events_skip_other_readers(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, require_auth=True) as (nursery, endpoint):
        alice, bob = pubkey_of(ALICE), pubkey_of(BOB)
        alice_client = await connect(nursery, endpoint.url)
        await authenticate(alice_client, ALICE, endpoint.url)
        assert await alice_client.req("live", {"kinds": [int(Kind.SERVICE_RESPONSE)]}) == []
        kind = int(Kind.SERVICE_RESPONSE)
        to_bob = endpoint.sign_as_gateway(kind, "c", [["p", bob], ["d", "resp:1"]])
        to_alice = endpoint.sign_as_gateway(kind, "c", [["p", alice], ["d", "resp:2"]])
        await endpoint.transport.publish(to_bob)
        await endpoint.transport.publish(to_alice)
        assert await alice_client.recv() == ["EVENT", "live", as_json(to_alice)]
        await alice_client.expect_quiet()


async def test_without_auth_encrypted_kinds_are_served_like_any_event(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        alice, bob = pubkey_of(ALICE), pubkey_of(BOB)
        to_alice, to_bob, public = await _gateway_answers(endpoint, alice, bob)
        anyone = await connect(nursery, endpoint.url)
        with trio.move_on_after(0.2):
            raise AssertionError(f"no AUTH expected, got {await anyone.recv()}")
        got = await anyone.req("all", {"authors": [endpoint.gateway_pubkey]})
        assert {e["id"] for e in got} == {to_alice.id, to_bob.id, public.id}
