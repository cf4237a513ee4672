"""The endpoint's hand-off to the core: ``OK true`` for an event addressed to the gateway
only once the core says it is recorded; ``OK false`` (``error:``) when the core refuses or
does not answer in time, so the wallet sends it again."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from arkrelay_core.config import Duration
from arkrelay_core.nostr import generate_secret_key, sign_event
from arkrelay_core.protocol import Kind

from .endpoint_harness import as_json, connect, endpoint_running

WALLET = generate_secret_key()


def intent_to(gateway: str, d: str = "a1"):
    return sign_event(WALLET, kind=int(Kind.INTENT), content="{}", tags=[["p", gateway], ["d", d]])


async def test_ok_waits_for_the_core_to_record_the_event(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        endpoint.core = "silent"
        client = await connect(nursery, endpoint.url)
        intent = intent_to(endpoint.gateway_pubkey)
        await client.send("EVENT", as_json(intent))
        item = await endpoint.inbound.receive()
        assert item.event == intent
        await client.expect_quiet()  # handed over, not yet recorded: no OK
        assert item.receipt is not None
        item.receipt.settle(True)
        assert await client.expect("OK") == ["OK", intent.id, True, ""]


async def test_a_refusing_core_means_ok_false_and_the_resend_is_taken(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        endpoint.core = "refuse"
        client = await connect(nursery, endpoint.url)
        intent = intent_to(endpoint.gateway_pubkey)
        ok, event_id, accepted, reason = await client.publish(intent)
        assert (ok, event_id, accepted) == ("OK", intent.id, False)
        assert reason.startswith("error:")
        assert endpoint.transport.statistics()["events_rejected"] == {"error": 1}

        # The wallet sends it again once the core takes events: the endpoint already
        # stored it, and says so, but the core gets it all the same.
        endpoint.core = "record"
        again = await client.publish(intent)
        assert again[:3] == ["OK", intent.id, True]
        assert again[3].startswith("duplicate:")
        assert endpoint.inbound.receive_nowait().event == intent


async def test_a_core_that_does_not_answer_in_time_means_ok_false(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, record_timeout=Duration(0.5)) as (nursery, endpoint):
        endpoint.core = "silent"
        client = await connect(nursery, endpoint.url)
        intent = intent_to(endpoint.gateway_pubkey)
        ok = await client.publish(intent)
        assert ok[:3] == ["OK", intent.id, False]
        assert ok[3] == "error: the gateway did not record the event in time, try again later"
        # A receipt settled after the deadline changes nothing for that OK, and the
        # connection goes on answering.
        (await endpoint.inbound.receive()).receipt.settle(True)
        endpoint.core = "record"
        other = intent_to(endpoint.gateway_pubkey, "a2")
        assert await client.publish(other) == ["OK", other.id, True, ""]


async def test_duplicates_still_reach_the_core_and_say_duplicate(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        client = await connect(nursery, endpoint.url)
        intent = intent_to(endpoint.gateway_pubkey)
        assert await client.publish(intent) == ["OK", intent.id, True, ""]
        second = await connect(nursery, endpoint.url)
        again = await second.publish(intent)
        assert again[:3] == ["OK", intent.id, True]
        assert again[3].startswith("duplicate:")
        reached = [endpoint.inbound.receive_nowait(), endpoint.inbound.receive_nowait()]
        assert [item.event for item in reached] == [intent, intent]
        assert all(item.receipt is not None and item.receipt.recorded for item in reached)


async def test_events_for_nobody_in_particular_do_not_wait_for_the_core(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        endpoint.core = "silent"
        client = await connect(nursery, endpoint.url)
        note = sign_event(WALLET, kind=1, content="hello", tags=[["p", endpoint.gateway_pubkey]])
        assert await client.publish(note) == ["OK", note.id, True, ""]
        with pytest.raises(trio.WouldBlock):
            endpoint.inbound.receive_nowait()
