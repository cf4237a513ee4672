"""The relays transport against real nostr-relay processes on loopback.

Wallets are plain trio-websocket clients; faults are real (relay processes SIGKILLed and
started again on the same port and database).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
import trio
from arkrelay_nostr.relays import RelayPoolTransport
from arkrelay_nostr.relays import websocket as websocket_module
from arkrelay_nostr.relays.frames import event_frame
from arkrelay_nostr.settings import RelaysSettings
from trio_websocket import open_websocket_url

from arkrelay_core.config import Duration, load_config_text
from arkrelay_core.gateway import Gateway
from arkrelay_core.identity import open_identity
from arkrelay_core.interfaces import InboundEvent, PluginContext, Transport
from arkrelay_core.nostr import Event, generate_secret_key, sign_event, xonly_public_key
from arkrelay_core.plugins import load_plugins
from arkrelay_core.store import create_engine_for, session_factory, upgrade

from .relay_process import NostrRelay, free_port


def pubkey(secret: bytes) -> str:
    return xonly_public_key(secret).hex()


def make_context(
    secret: bytes, tmp_path: Path, listening: Callable[[], Sequence[str]] | None = None
) -> PluginContext:
    def sign(kind: int, content: str, tags: Any) -> Event:
        return sign_event(secret, kind=kind, content=content, tags=tags)

    return PluginContext(
        network="regtest",
        data_dir=tmp_path,
        listening_pubkeys=listening or (lambda: [pubkey(secret)]),
        sign_event=sign,
        instance_name="relays",
    )


def make_settings(*urls: str, **overrides: Any) -> RelaysSettings:
    values: dict[str, Any] = {
        "connect_timeout": Duration(5),
        "publish_timeout": Duration(8),
        "backoff_initial": Duration(0.1),
        "backoff_max": Duration(0.5),
    }
    values.update(overrides)
    return RelaysSettings(relays=list(urls), **values)


def wallet_event(wallet: bytes, to: str, label: str, *, age: int = 0) -> Event:
    """A wallet's intent; ``age`` back-dates it (a wallet that signed it a while ago)."""
    # Distinct "d" tags: these kinds are addressable, a relay keeps one per (pubkey, kind, d).
    return sign_event(
        wallet,
        kind=31510,
        content="{}",
        tags=[["p", to], ["d", label]],
        created_at=int(time.time()) - age,
    )


async def wallet_publish(url: str, event: Event) -> None:
    """Publish as a wallet would and insist the relay stored it."""
    async with open_websocket_url(url, connect_timeout=5, disconnect_timeout=5) as ws:
        await ws.send_message(event_frame(event))
        while True:
            message = msgspec.json.decode(await ws.get_message())
            if message[0] == "OK":
                assert message[1:3] == [event.id, True], message
                return


async def start_relays(factory: Callable[..., NostrRelay], count: int) -> list[NostrRelay]:
    relays = [factory(start=False) for _ in range(count)]
    async with trio.open_nursery() as nursery:
        for relay in relays:
            nursery.start_soon(trio.to_thread.run_sync, relay.start)
    return relays


async def wait_until(condition: Callable[[], bool]) -> None:
    # statistics() is a plain snapshot with nothing to wait on; tests poll it (the code never does).
    while not condition():  # noqa: ASYNC110
        await trio.sleep(0.02)


def relay_stats(transport: RelayPoolTransport, url: str) -> dict[str, Any]:
    return transport.statistics()["relays"][url]


def all_forwarded(transport: RelayPoolTransport) -> bool:
    totals = transport.statistics()["totals"]
    return totals["delivered"] + totals["duplicates"] == totals["events_in"]


def drain(receive: trio.MemoryReceiveChannel[InboundEvent]) -> list[InboundEvent]:
    items = []
    while True:
        try:
            items.append(receive.receive_nowait())
        except trio.WouldBlock:
            return items


@asynccontextmanager
async def serving(
    transport: RelayPoolTransport,
) -> AsyncIterator[trio.MemoryReceiveChannel[InboundEvent]]:
    send, receive = trio.open_memory_channel[InboundEvent](100)
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.serve, send)
        yield receive
        nursery.cancel_scope.cancel()


async def test_delivers_addressed_events_once_and_publishes_to_every_relay(
    relay_factory: Callable[..., NostrRelay], tmp_path: Path
) -> None:
    with trio.fail_after(90):
        one, two = await start_relays(relay_factory, 2)
        service, wallet = generate_secret_key(), generate_secret_key()
        transport = RelayPoolTransport(
            make_settings(one.url, two.url), make_context(service, tmp_path)
        )
        async with serving(transport) as receive:
            await wait_until(lambda: transport.statistics()["totals"]["live"] == 2)

            someone_else = pubkey(generate_secret_key())
            await wallet_publish(one.url, wallet_event(wallet, someone_else, "theirs"))
            mine = wallet_event(wallet, pubkey(service), "mine")
            await wallet_publish(one.url, mine)
            # The relay answers a connection in order: "theirs" would have come first.
            handed = await receive.receive()
            assert (handed.event, handed.source) == (mine, one.url)

            both = wallet_event(wallet, pubkey(service), "both")
            await wallet_publish(one.url, both)
            await wallet_publish(two.url, both)
            await wait_until(lambda: transport.statistics()["totals"]["events_in"] == 3)
            await wait_until(lambda: all_forwarded(transport))
            assert [item.event for item in drain(receive)] == [both]
            totals = transport.statistics()["totals"]
            assert (totals["delivered"], totals["duplicates"], totals["events_invalid"]) == (
                2,
                1,
                0,
            )
            assert relay_stats(transport, one.url)["events_ignored"] == 0

            outbound = sign_event(
                service, kind=31511, content="{}", tags=[["p", pubkey(wallet)], ["d", "c1"]]
            )
            result = await transport.publish(outbound)
            assert result.accepted == (one.url, two.url)
            assert (dict(result.rejected), result.timed_out) == ({}, ())
            # Sending it again: the relays already have it ("duplicate:"), still accepted.
            again = await transport.publish(outbound)
            assert again.accepted == (one.url, two.url)

            await trio.to_thread.run_sync(two.stop)
            await wait_until(lambda: relay_stats(transport, two.url)["state"] != "connected")
            later = sign_event(
                service, kind=31511, content="{}", tags=[["p", pubkey(wallet)], ["d", "c2"]]
            )
            partial = await transport.publish(later)
            assert (partial.accepted, partial.timed_out) == ((one.url,), (two.url,))

            stats = transport.statistics()
            first, second = stats["relays"][one.url], stats["relays"][two.url]
            assert first["state"] == "connected" and first["connected_since"] is not None
            assert (first["events_in"], first["events_out"], second["events_in"]) == (2, 3, 1)
            assert first["publish_latency_ms"]["last"] is not None
            assert first["publish_latency_ms"]["avg"] is not None
            assert second["last_error"] is not None and second["connected_since"] is None
            assert stats["totals"]["connected"] == 1


class ReconnectGate:
    def __init__(self) -> None:
        self.opened = trio.Event()
        self.opened.set()

    def close(self) -> None:
        self.opened = trio.Event()


async def test_after_a_relay_outage_every_event_arrives_exactly_once(
    relay_factory: Callable[..., NostrRelay], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(120):
        one, two = await start_relays(relay_factory, 2)
        service, wallet = generate_secret_key(), generate_secret_key()
        to = pubkey(service)

        # Hold the transport's reconnects to relay one while the wallet publishes to the
        # restarted relay: those events can then only come through the "since" cursor.
        gate = ReconnectGate()
        real_open = websocket_module.open_websocket_url

        @asynccontextmanager
        async def held_open(url: str, **kwargs: Any) -> AsyncIterator[Any]:
            if url == one.url:
                await gate.opened.wait()
            async with real_open(url, **kwargs) as ws:
                yield ws

        monkeypatch.setattr(websocket_module, "open_websocket_url", held_open)
        transport = RelayPoolTransport(
            make_settings(one.url, two.url), make_context(service, tmp_path)
        )
        expected: list[str] = []
        async with serving(transport) as receive:
            await wait_until(lambda: transport.statistics()["totals"]["live"] == 2)

            async def publish(url: str, label: str, age: int = 0) -> Event:
                event = wallet_event(wallet, to, label, age=age)
                await wallet_publish(url, event)
                if event.id not in expected:
                    expected.append(event.id)
                return event

            await publish(one.url, "a1")
            await publish(two.url, "a2")
            a3 = await publish(one.url, "a3")
            await wallet_publish(two.url, a3)

            gate.close()
            await trio.to_thread.run_sync(one.stop)
            await wait_until(lambda: relay_stats(transport, one.url)["state"] != "connected")
            assert relay_stats(transport, one.url)["last_error"] is not None
            assert transport.statistics()["totals"]["connected"] == 1

            await publish(two.url, "b1")
            await publish(two.url, "b2")

            await trio.to_thread.run_sync(one.start)
            # c1 is older than anything relay one sent before: only the window brings it.
            await publish(one.url, "c1", age=60)
            await publish(one.url, "c2")
            assert relay_stats(transport, one.url)["state"] != "connected"
            gate.opened.set()
            await wait_until(lambda: relay_stats(transport, one.url)["live"])
            assert relay_stats(transport, one.url)["connects"] == 2

            await publish(one.url, "d1")
            await publish(two.url, "d2")

            received: list[InboundEvent] = []
            while len(received) < len(expected):
                received.append(await receive.receive())
            await wait_until(lambda: all_forwarded(transport))
            received += drain(receive)
            ids = [item.event.id for item in received]
            assert sorted(ids) == sorted(expected)  # all of them, each once
            assert transport.statistics()["totals"]["duplicates"] >= 1  # the a3 copies


async def test_nip42_auth_makes_publishing_possible(
    relay_factory: Callable[..., NostrRelay], tmp_path: Path
) -> None:
    with trio.fail_after(120):
        service = generate_secret_key()
        relay = relay_factory(auth_writers=(pubkey(service),), start=False)
        await trio.to_thread.run_sync(relay.start)
        context = make_context(service, tmp_path)
        answering = RelayPoolTransport(make_settings(relay.url), context)
        silent = RelayPoolTransport(make_settings(relay.url, auth=False), context)
        async with serving(answering), serving(silent):
            await wait_until(lambda: relay_stats(answering, relay.url)["auth"] == "answered")
            await wait_until(lambda: relay_stats(silent, relay.url)["auth"] == "challenged")
            await wait_until(lambda: relay_stats(silent, relay.url)["live"])

            to = pubkey(generate_secret_key())
            allowed = sign_event(service, kind=31511, content="{}", tags=[["p", to], ["d", "1"]])
            result = await answering.publish(allowed)
            assert result.accepted == (relay.url,)

            refused = sign_event(service, kind=31511, content="{}", tags=[["p", to], ["d", "2"]])
            result = await silent.publish(refused)
            assert result.accepted == () and result.timed_out == ()
            assert result.rejected[relay.url].startswith("restricted:")


async def test_listening_key_rotation_resubscribes(
    relay_factory: Callable[..., NostrRelay], tmp_path: Path
) -> None:
    with trio.fail_after(90):
        relay = relay_factory(start=False)
        await trio.to_thread.run_sync(relay.start)
        old, new, wallet = generate_secret_key(), generate_secret_key(), generate_secret_key()
        listening = [pubkey(old)]
        transport = RelayPoolTransport(
            make_settings(relay.url),
            make_context(old, tmp_path, lambda: list(listening)),
            keepalive_interval=0.2,
        )

        def subscriptions() -> int:
            return relay_stats(transport, relay.url)["subscriptions"]

        async with serving(transport) as receive:
            await wait_until(lambda: relay_stats(transport, relay.url)["live"])
            early_to_new = wallet_event(wallet, pubkey(new), "early-new", age=60)
            await wallet_publish(relay.url, early_to_new)
            to_old = wallet_event(wallet, pubkey(old), "old-1")
            await wallet_publish(relay.url, to_old)
            assert (await receive.receive()).event == to_old

            listening.append(pubkey(new))
            # The resubscription reaches back one window: the early event comes now.
            assert (await receive.receive()).event == early_to_new
            to_new = wallet_event(wallet, pubkey(new), "new-1")
            await wallet_publish(relay.url, to_new)
            assert (await receive.receive()).event == to_new

            before = subscriptions()
            listening.remove(pubkey(old))
            await wait_until(lambda: subscriptions() > before)
            await wait_until(lambda: relay_stats(transport, relay.url)["live"])
            await wallet_publish(relay.url, wallet_event(wallet, pubkey(old), "old-2"))
            last = wallet_event(wallet, pubkey(new), "new-2")
            await wallet_publish(relay.url, last)
            assert (await receive.receive()).event == last
            await wait_until(lambda: all_forwarded(transport))
            assert drain(receive) == []
            assert relay_stats(transport, relay.url)["connects"] == 1


async def test_a_dead_relay_does_not_block_start_up_and_times_out(tmp_path: Path) -> None:
    with trio.fail_after(20):
        service = generate_secret_key()
        url = f"ws://127.0.0.1:{free_port()}"
        transport = RelayPoolTransport(
            make_settings(url, publish_timeout=Duration(1)), make_context(service, tmp_path)
        )
        async with serving(transport):
            await wait_until(lambda: relay_stats(transport, url)["last_error"] is not None)
            event = sign_event(service, kind=31511, content="{}", tags=[["d", "x"]])
            result = await transport.publish(event)
            assert (result.accepted, dict(result.rejected), result.timed_out) == ((), {}, (url,))
            assert relay_stats(transport, url)["state"] in ("backoff", "connecting")
            assert "HandshakeError" in relay_stats(transport, url)["last_error"]


async def test_the_gateway_runs_it_from_config(
    relay_factory: Callable[..., NostrRelay], tmp_path: Path
) -> None:
    with trio.fail_after(60):
        relay = relay_factory(start=False)
        await trio.to_thread.run_sync(relay.start)
        registry = load_plugins()
        config = load_config_text(
            f'[gateway]\ndata_dir = "{tmp_path}"\n'
            f'[transport.relays]\nrelays = ["{relay.url}"]\nbackoff_initial = 0.1\n',
            source="gw.toml",
            settings_resolver=registry.settings_type,
        )
        upgrade(config.gateway.database)
        engine = create_engine_for(config.gateway.database)
        identity = open_identity(config.gateway.key_file, config.gateway.network, environ={})
        gateway = Gateway(config, registry, identity, session_factory(engine))
        transport = gateway.components.transports["relays"]
        assert isinstance(transport, RelayPoolTransport) and isinstance(transport, Transport)

        event = wallet_event(generate_secret_key(), identity.pubkey, "via-gateway")
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)
            await wait_until(lambda: relay_stats(transport, relay.url)["live"])
            await wallet_publish(relay.url, event)
            await gateway.wait_inbound_handled(1)
            stats = gateway.statistics()
            nursery.cancel_scope.cancel()
        with engine.connect() as connection:
            rows = connection.execute(sa.text("select id from events_in")).all()
        engine.dispose()
        assert rows == [(event.id,)]
        assert stats["components"]["transport.relays"]["totals"]["delivered"] == 1


async def test_the_outbox_delivers_what_was_published_while_the_relay_was_down(
    relay_factory: Callable[..., NostrRelay], tmp_path: Path
) -> None:
    with trio.fail_after(90):
        relay = relay_factory(start=False)  # down when the gateway publishes
        registry = load_plugins()
        config = load_config_text(
            f'[gateway]\ndata_dir = "{tmp_path}"\n'
            f'[transport.relays]\nrelays = ["{relay.url}"]\nbackoff_initial = 0.1\n'
            'backoff_max = 0.5\n[outbox]\nretry_initial = "0.2s"\nretry_max = "1s"\n',
            source="gw.toml",
            settings_resolver=registry.settings_type,
        )
        upgrade(config.gateway.database)
        engine = create_engine_for(config.gateway.database)
        identity = open_identity(config.gateway.key_file, config.gateway.network, environ={})
        gateway = Gateway(config, registry, identity, session_factory(engine))
        answer = identity.sign_event(31340, '{"status":"success"}', [["d", "act-1"]])
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)
            await gateway.publish(answer)
            await wait_until(lambda: gateway.statistics()["outbox"]["retries_scheduled"] >= 1)
            await trio.to_thread.run_sync(relay.start)
            await wait_until(lambda: gateway.statistics()["outbox"]["published"] == 1)
            nursery.cancel_scope.cancel()
        with engine.connect() as connection:
            [(acked_at, relays)] = connection.execute(
                sa.text("select acked_at, accepted_relays from outbox")
            ).all()
        engine.dispose()
        assert acked_at is not None and relay.url in str(relays)

        # A wallet reading the relay finds the gateway's event, signed once, same id.
        async with open_websocket_url(relay.url, connect_timeout=5) as ws:
            await ws.send_message(f'["REQ","x",{{"ids":["{answer.id}"]}}]')
            assert json.loads(await ws.get_message())[2]["id"] == answer.id
