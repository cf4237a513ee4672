"""The relays transport's parts without a network: frames, the inbound gate, OK matching,
NIP-42 answers, the subscription cursor, backoff and the recent-id set."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest
import trio
from arkrelay_nostr.relays.acks import Ack, AckWaiters
from arkrelay_nostr.relays.auth import AUTH_KIND, RelayAuth
from arkrelay_nostr.relays.backoff import Backoff
from arkrelay_nostr.relays.connection import RelayConnection
from arkrelay_nostr.relays.frames import (
    AuthFrame,
    ClosedFrame,
    EoseFrame,
    EventFrame,
    FrameError,
    NoticeFrame,
    OkFrame,
    parse_frame,
)
from arkrelay_nostr.relays.recent import RecentIds
from arkrelay_nostr.relays.subscription import Subscription
from arkrelay_nostr.settings import RelaysSettings

from arkrelay_core.config import Duration
from arkrelay_core.interfaces import InboundEvent, PluginContext
from arkrelay_core.nostr import (
    Event,
    generate_secret_key,
    sign_event,
    verify_event,
    xonly_public_key,
)

URL = "ws://relay.invalid:1"
SERVICE = generate_secret_key()
SERVICE_PK = xonly_public_key(SERVICE).hex()
WALLET = generate_secret_key()


def context(secret: bytes = SERVICE) -> PluginContext:
    pubkey = xonly_public_key(secret).hex()

    def sign(kind: int, content: str, tags: object) -> Event:
        return sign_event(secret, kind=kind, content=content, tags=tags)  # type: ignore[arg-type]

    return PluginContext(
        network="regtest",
        data_dir=Path("."),
        listening_pubkeys=lambda: [pubkey],
        sign_event=sign,
    )


def intent(to: str = SERVICE_PK, *, kind: int = 31510, content: str = "{}") -> Event:
    return sign_event(WALLET, kind=kind, content=content, tags=[["p", to], ["d", "a1"]])


def frame(*parts: object) -> str:
    return msgspec.json.encode(list(parts)).decode()


# --- frames -----------------------------------------------------------------------


def test_parse_every_relay_message() -> None:
    event = intent()
    raw = frame("EVENT", "sub", event)
    parsed = parse_frame(raw)
    assert isinstance(parsed, EventFrame)
    assert parsed.subscription == "sub"
    assert parsed.event["id"] == event.id
    assert parsed.size == len(raw.encode())
    assert parse_frame(frame("OK", event.id, False, "blocked: no")) == OkFrame(
        event.id, False, "blocked: no"
    )
    assert parse_frame(frame("OK", event.id, True)) == OkFrame(event.id, True, "")
    assert parse_frame(frame("EOSE", "sub")) == EoseFrame("sub")
    assert parse_frame(frame("CLOSED", "sub", "error: x")) == ClosedFrame("sub", "error: x")
    assert parse_frame(frame("NOTICE", "slow down")) == NoticeFrame("slow down")
    assert parse_frame(frame("AUTH", "c1")) == AuthFrame("c1")


@pytest.mark.parametrize(
    "raw",
    ["not json", "{}", "[]", '["OK", "id", "yes", ""]', '["EVENT", 1, {}]', '["HELLO"]'],
)
def test_parse_rejects_what_is_not_a_relay_message(raw: str) -> None:
    with pytest.raises(FrameError):
        parse_frame(raw)


# --- the inbound gate -------------------------------------------------------------


def make_connection(
    **overrides: object,
) -> tuple[RelayConnection, trio.MemoryReceiveChannel[InboundEvent]]:
    settings = RelaysSettings(relays=[URL], max_event_bytes=1024, **overrides)  # type: ignore[arg-type]
    send, receive = trio.open_memory_channel[InboundEvent](10)
    return RelayConnection(URL, settings, context(), send, keepalive=30.0), receive


async def test_gate_hands_on_a_valid_event_with_its_source() -> None:
    with trio.fail_after(5):
        connection, receive = make_connection()
        event = intent()
        await connection.handle_frame(frame("EVENT", "sub", event))
        handed = receive.receive_nowait()
        assert (handed.event, handed.source) == (event, URL)
        assert handed.receipt is not None and not handed.receipt.settled
        assert connection.stats.events_in == 1


async def test_gate_drops_and_counts_bad_signature_bad_id_and_oversize() -> None:
    with trio.fail_after(5):
        connection, receive = make_connection()
        event = intent()
        other_sig = intent(content="other").sig
        forged = msgspec.structs.replace(event, sig=other_sig)
        tampered = msgspec.structs.replace(event, content="changed")
        oversize = intent(content="x" * 2000)
        for bad in (forged, tampered, oversize):
            await connection.handle_frame(frame("EVENT", "sub", bad))
        await connection.handle_frame(frame("EVENT", "sub", {"id": "nope"}))
        assert connection.stats.events_invalid == 4
        assert connection.stats.events_in == 0
        with pytest.raises(trio.WouldBlock):
            receive.receive_nowait()


async def test_gate_ignores_events_not_for_us() -> None:
    with trio.fail_after(5):
        connection, receive = make_connection()
        someone = xonly_public_key(generate_secret_key()).hex()
        await connection.handle_frame(frame("EVENT", "sub", intent(to=someone)))
        await connection.handle_frame(frame("EVENT", "sub", intent(kind=1)))
        assert connection.stats.events_ignored == 2
        with pytest.raises(trio.WouldBlock):
            receive.receive_nowait()


async def test_notices_challenges_and_garbage_are_counted() -> None:
    with trio.fail_after(5):
        connection, _ = make_connection(auth=False)
        await connection.handle_frame(frame("NOTICE", "hello"))
        await connection.handle_frame("[1, 2")
        await connection.handle_frame(frame("AUTH", "challenge-1"))
        stats = connection.stats.snapshot()
        assert (stats["notices"], stats["frames_invalid"], stats["auth"]) == (1, 1, "challenged")


# --- OK matching ------------------------------------------------------------------


def test_ok_with_an_empty_id_goes_to_the_oldest_publish() -> None:
    waiters = AckWaiters()
    first, second = waiters.expect("a" * 64), waiters.expect("b" * 64)
    assert waiters.resolve("", Ack(False, "restricted: no"))
    assert first.done.is_set() and first.ack == Ack(False, "restricted: no")
    assert not second.done.is_set()
    assert not waiters.resolve("c" * 64, Ack(True, ""))
    assert waiters.resolve("b" * 64, Ack(True, ""))
    assert second.ack == Ack(True, "")
    assert len(waiters) == 0


def test_abandoned_publishes_wake_without_an_answer() -> None:
    waiters = AckWaiters()
    waiter = waiters.expect("a" * 64)
    waiters.abandon_all()
    assert waiter.done.is_set() and waiter.ack is None
    assert not waiters.resolve("", Ack(True, ""))


# --- NIP-42 -----------------------------------------------------------------------


def test_auth_answer_is_a_signed_22242_for_relay_and_challenge() -> None:
    auth = RelayAuth(URL, context().sign_event, enabled=True)
    assert auth.answer() is None  # no challenge yet
    auth.challenge = "c1"
    raw = auth.answer()
    assert raw is not None
    label, body = msgspec.json.decode(raw)
    event = msgspec.convert(body, Event)
    assert label == "AUTH" and verify_event(event)
    assert (event.kind, event.pubkey, event.content) == (AUTH_KIND, SERVICE_PK, "")
    assert event.tags == [["relay", URL], ["challenge", "c1"]]
    assert auth.answered and auth.is_answer(event.id) and not auth.is_answer("")
    assert auth.answer() is None
    assert auth.answer(again=True) is not None


def test_auth_disabled_never_answers_and_never_retries() -> None:
    auth = RelayAuth(URL, context().sign_event, enabled=False)
    auth.challenge = "c1"
    assert auth.answer() is None
    assert not auth.may_help(Ack(False, "auth-required: please"), answered_before=False)


def test_auth_retry_only_when_it_may_help() -> None:
    auth = RelayAuth(URL, context().sign_event, enabled=True)
    auth.challenge = "c1"
    assert auth.may_help(Ack(False, "auth-required: x"), answered_before=True)
    assert auth.may_help(Ack(False, "restricted: x"), answered_before=False)
    assert not auth.may_help(Ack(False, "restricted: x"), answered_before=True)
    assert not auth.may_help(Ack(False, "blocked: x"), answered_before=False)
    assert not auth.may_help(Ack(True, ""), answered_before=False)


# --- subscription, backoff, recent ids --------------------------------------------


def test_subscription_since_follows_the_cursor_less_the_window() -> None:
    sub = Subscription([31510], window=600, backoff=Backoff(1, 2), now=10_000)
    request, close = sub.renew(("k1",))
    assert close is None and request is not None
    _, sub_id, wanted = msgspec.json.decode(request)
    assert wanted == {"kinds": [31510], "#p": ["k1"], "since": 9_400}
    sub.seen(12_000, now=11_000)  # from the future: the cursor stops at now
    sub.seen(10_500, now=11_000)
    request, close = sub.renew(("k1", "k2"))
    assert close is not None and msgspec.json.decode(close) == ["CLOSE", sub_id]
    assert msgspec.json.decode(request)[2]["since"] == 10_400
    assert msgspec.json.decode(request)[2]["#p"] == ["k1", "k2"]
    assert not sub.closed_by_relay(sub_id)  # replaced: ours
    assert sub.renew(())[0] is None  # no keys: no REQ at all


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(Duration(0.5).seconds, 4.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_recent_ids_forget_the_oldest() -> None:
    recent = RecentIds(3)
    for event_id in "abcd":
        recent.add(event_id)
    assert "a" not in recent and all(i in recent for i in "bcd") and len(recent) == 3
