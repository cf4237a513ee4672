"""The scripted wallet against a real nostr-relay, with the gateway's side played by a key
the test holds: what a relay can prove about the wallet's wire behaviour."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from arkrelay_wallet import PublishRefused

from arkrelay_core.nostr import (
    Event,
    Scheme,
    bip340,
    encrypt_dm,
    first_tag_value,
    sign_event,
    tag_values,
    verify_event,
)
from arkrelay_core.protocol import (
    Kind,
    challenge_d,
    failure_d,
    payload_ref,
    service_response_d,
    session_id_for,
    sign_payload_digest,
)
from plugins.nostr.tests.relay_process import NostrRelay

from .wallet import CeremonyTimeout, Received, ScriptedWallet

DOMAIN = "arkrelay/test/v1"


class ScriptedGateway(ScriptedWallet):
    """The gateway's side of the wire: hears what wallets address to its key."""

    ADDRESSED_KINDS = (Kind.SERVICE_REQUEST, Kind.INTENT, Kind.SIGNING_RESPONSE)

    def __init__(self, relay_url: str) -> None:
        secret = bip340.generate_secret_key()
        super().__init__(relay_url, bip340.xonly_public_key(secret).hex(), secret=secret)

    def send(
        self,
        kind: int,
        content: dict[str, Any],
        *,
        to: str,
        d: str,
        e: str | None = None,
        scheme: Scheme | str = Scheme.NIP44,
    ) -> Event:
        text = json.dumps(content)
        if kind in (Kind.SERVICE_RESPONSE, Kind.CHALLENGE, Kind.FAILURE):
            text = encrypt_dm(self.secret, to, text, scheme)
        tags = [["p", to], ["d", d]] + ([["e", e]] if e else [])
        return sign_event(self.secret, kind=kind, content=text, tags=tags)


@pytest.fixture
def relay_url(tmp_path: Path) -> Iterator[str]:
    relay = NostrRelay(tmp_path / "relay")
    relay.start()
    try:
        yield relay.url
    finally:
        relay.stop()


def _payload_challenge(session_id: str, step: int, total: int) -> dict[str, Any]:
    payload = {"session": session_id, "step": step}
    digest = sign_payload_digest(DOMAIN, payload)
    return {
        "session_id": session_id,
        "type": "sign_payload",
        "payload_to_sign": digest,
        "payload_ref": payload_ref(digest),
        "algo": "BIP340",
        "domain": DOMAIN,
        "step_index": step,
        "step_total": total,
        "expires_at": 1_900_000_000,
        "context": {"payload": payload},
    }


async def test_encrypted_challenge_reaches_the_addressed_wallet(relay_url: str):
    gateway_secret = bip340.generate_secret_key()
    gateway_pub = bip340.xonly_public_key(gateway_secret).hex()
    async with ScriptedWallet(relay_url, gateway_pub) as wallet_b:
        # The careful wallet signs only for sessions of intents it signed (here: pretended).
        wallet_b.careful.expect(session_id_for("ab" * 32), {"type": "x:test", "params": {}})
        async with ScriptedWallet(relay_url, wallet_b.pubkey, secret=gateway_secret) as wallet_a:
            content = _payload_challenge(session_id_for("ab" * 32), 1, 1)
            challenge = sign_event(
                gateway_secret,
                kind=Kind.CHALLENGE,
                content=encrypt_dm(gateway_secret, wallet_b.pubkey, json.dumps(content), "nip44"),
                tags=[
                    ["p", wallet_b.pubkey],
                    ["d", challenge_d(content["session_id"], 1)],
                    ["e", "ab" * 32],
                ],
            )
            await wallet_a.publish(challenge)
        received = await wallet_b.next(Kind.CHALLENGE)
        assert received.event == challenge
        assert received.content == content and received.scheme == "nip44"
        # The relay takes the careful wallet's answer.
        response = await wallet_b.answer(received)
        assert verify_event(response) and tag_values(response, "e") == [challenge.id]


async def test_ceremony_answers_each_step_and_returns_the_confirmation(relay_url: str):
    async with (
        ScriptedGateway(relay_url) as gateway,
        ScriptedWallet(relay_url, gateway.pubkey) as wallet,
    ):
        intent = wallet.intent("ark:transfer", {"asset_id": "gBTC", "amount": 1000})
        answers: list[Received] = []

        async def play_gateway() -> None:
            got = await gateway.next(Kind.INTENT)
            assert got.event == intent
            session_id = session_id_for(intent.id)
            for step in (1, 2):
                content = _payload_challenge(session_id, step, 2)
                challenge = gateway.send(
                    Kind.CHALLENGE,
                    content,
                    to=wallet.pubkey,
                    d=challenge_d(session_id, step),
                    e=intent.id,
                )
                await gateway.publish(challenge)
                answer = await gateway.next(Kind.SIGNING_RESPONSE)
                assert tag_values(answer.event, "e") == [challenge.id]
                assert bip340.schnorr_verify(
                    bytes.fromhex(wallet.pubkey),
                    bytes.fromhex(content["payload_to_sign"]),
                    bytes.fromhex(answer.content["signature"]),
                )
                answers.append(answer)
            action_id = got.content["action_id"]
            confirmation = sign_event(
                gateway.secret,
                kind=Kind.CONFIRMATION,
                content=json.dumps({"status": "success", "ref_action_id": action_id}),
                tags=[["e", intent.id], ["p", wallet.pubkey], ["d", action_id]],
            )
            await gateway.publish(confirmation)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(play_gateway)
            outcome = await wallet.run_ceremony(intent, timeout=30)
        assert outcome.event.kind == Kind.CONFIRMATION
        assert outcome.content["ref_action_id"] == json.loads(intent.content)["action_id"]
        assert [first_tag_value(a.event, "d") for a in answers] == [
            challenge_d(session_id_for(intent.id), step) for step in (1, 2)
        ]


async def test_ceremony_returns_a_failure_notice(relay_url: str):
    async with (
        ScriptedGateway(relay_url) as gateway,
        ScriptedWallet(relay_url, gateway.pubkey) as wallet,
    ):
        intent = wallet.intent("ark:transfer", {}, action_id="act-1")
        failure = {"status": "failure", "code": 1002, "message": "bad params"}
        notice = gateway.send(
            Kind.FAILURE,
            {**failure, "ref_action_id": "act-1", "retryable": False},
            to=wallet.pubkey,
            d=failure_d("act-1"),
            e=intent.id,
        )
        await gateway.publish(notice)
        outcome = await wallet.run_ceremony(intent, timeout=30)
        assert outcome.event == notice and outcome.scheme == "nip44"
        assert outcome.content["code"] == 1002


async def test_call_in_nip04_gets_the_response_content(relay_url: str):
    async with (
        ScriptedGateway(relay_url) as gateway,
        ScriptedWallet(relay_url, gateway.pubkey) as wallet,
    ):
        wallet.nip04()

        async def play_gateway() -> None:
            request = await gateway.next(Kind.SERVICE_REQUEST)
            assert request.scheme == "nip04" and request.content["action"] == "get_info"
            reply = {"request_id": request.content["request_id"], "action": "get_info"}
            await gateway.publish(
                gateway.send(
                    Kind.SERVICE_RESPONSE,
                    {**reply, "status": "ok", "network": "regtest"},
                    to=wallet.pubkey,
                    d=service_response_d(request.event.id),
                    e=request.event.id,
                    scheme=request.scheme or Scheme.NIP44,
                )
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(play_gateway)
            response = await wallet.call("get_info", timeout=30)
        assert response["status"] == "ok" and response["network"] == "regtest"


async def test_public_confirmations_of_the_gateway_arrive_once(relay_url: str):
    async with (
        ScriptedGateway(relay_url) as gateway,
        ScriptedWallet(relay_url, gateway.pubkey) as wallet,
    ):
        # Not addressed to the wallet: it hears the gateway's 31340s by author.
        confirmation = sign_event(
            gateway.secret,
            kind=Kind.CONFIRMATION,
            content=json.dumps({"status": "success", "batch_id": "b-1"}),
            tags=[["d", "batch:b-1"]],
        )
        await gateway.publish(confirmation)
        await gateway.publish(confirmation)
        received = await wallet.next(Kind.CONFIRMATION)
        assert received.event == confirmation and received.scheme is None
        with pytest.raises(CeremonyTimeout, match="31340"):
            await wallet.next(Kind.CONFIRMATION, timeout=0.5)


async def test_relay_refusal_and_unreadable_events_are_reported(relay_url: str):
    async with (
        ScriptedGateway(relay_url) as gateway,
        ScriptedWallet(relay_url, gateway.pubkey) as wallet,
    ):
        intent = wallet.intent("ark:transfer", {})
        forged = msgspec.structs.replace(intent, sig="00" * 64)
        with pytest.raises(PublishRefused, match="relay refused") as refused:
            await wallet.publish(forged)
        # Final, not sent again, and the caller hears the relay's own reason.
        assert refused.value.reason.startswith("invalid:") and refused.value.event_id == forged.id
        assert not wallet.retried
        # Encrypted to someone else: it reaches the wallet but cannot be opened.
        stranger = bip340.xonly_public_key(bip340.generate_secret_key()).hex()
        sealed = sign_event(
            gateway.secret,
            kind=Kind.NOTIFICATION,
            content=encrypt_dm(gateway.secret, stranger, "{}", "nip44"),
            tags=[["p", wallet.pubkey], ["d", "note:1"]],
        )
        await gateway.publish(sealed)
        marker = gateway.send(Kind.FAILURE, {"code": 9001}, to=wallet.pubkey, d="fail:x")
        await gateway.publish(marker)
        # nostr-relay notifies subscribers in the order it stores events: the sealed one came first.
        await wallet.next(Kind.FAILURE)
        assert [(event.id, why[:18]) for event, why in wallet.unreadable] == [
            (sealed.id, "unreadable content")
        ]
