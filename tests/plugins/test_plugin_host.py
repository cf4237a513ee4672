"""The plugin host in-process: spec validation, provenance, observers, the gateway nursery."""

import logging
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa
import trio

from arkrelay_core.config import UnknownPluginError, load_config_text
from arkrelay_core.errors import PluginError
from arkrelay_core.gateway import Gateway
from arkrelay_core.identity import open_identity
from arkrelay_core.interfaces import (
    ActionResult,
    IntentHandler,
    IntentTypeSpec,
    PayloadToSign,
    PluginSpec,
)
from arkrelay_core.nostr import generate_secret_key, sign_event
from arkrelay_core.plugins import hookimpl, load_plugins
from arkrelay_core.store import create_engine_for, session_factory, upgrade

DISTS = Path(__file__).parent / "dists"


@pytest.fixture
def loopback(monkeypatch):
    monkeypatch.syspath_prepend(str(DISTS / "arkrelay-testplug"))
    import arkrelay_testplug

    return arkrelay_testplug


class Settings(msgspec.Struct, forbid_unknown_fields=True):
    target: str = "127.0.0.1:1"


def _spec(**overrides):
    fields = dict(
        name="fake", version="1.0", role="ark", settings_type=Settings, factory=lambda s, c: None
    )
    fields.update(overrides)
    return PluginSpec(**fields)


class _Backends:
    def __init__(self, *specs):
        self.specs = list(specs)

    @hookimpl
    def arkrelay_register_backends(self):
        return self.specs


def test_specs_keep_their_origin_and_resolve_settings(loopback):
    registry = load_plugins(
        entry_points=[], extra=[("loopback", loopback), ("fakes", _Backends(_spec()))]
    )
    assert registry.failures == ()
    assert registry.names("transport") == ["loopback"]
    assert registry.names("ark") == ["fake"]
    assert registry.get("ark", "fake").distribution == "fakes"
    assert registry.settings_type("transport", "loopback") is loopback.LoopbackSettings


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (_spec(role="transport"), "has role 'transport', expected one of"),
        (_spec(role="bank"), "has role 'bank'"),
        (_spec(settings_type=dict), "settings_type must be a msgspec.Struct subclass"),
        (_spec(factory="nope"), "factory is not callable"),
        ("not a spec", "registration returned str, not a PluginSpec"),
    ],
)
def test_malformed_specs_become_named_failures(spec, problem):
    registry = load_plugins(entry_points=[], extra=[("bad", _Backends(spec))])
    assert registry.installed == ()
    [failure] = registry.failures
    assert failure.entry_point == "bad"
    assert problem in failure.error


def test_two_plugins_claiming_one_name_is_an_error():
    registry = load_plugins(
        entry_points=[], extra=[("one", _Backends(_spec())), ("two", _Backends(_spec()))]
    )
    assert [p.distribution for p in registry.installed] == ["one"]
    assert "'fake' is already registered by one" in registry.failures[0].error


def test_unknown_plugin_lists_what_is_installed(loopback):
    registry = load_plugins(entry_points=[], extra=[("fakes", _Backends(_spec()))])
    with pytest.raises(UnknownPluginError):
        registry.get("ark", "arkdd")
    broken = load_plugins(entry_points=[], extra=[("bad", _Backends("junk"))])
    with pytest.raises(UnknownPluginError) as info:
        broken.get("ark", "fake")
    assert str(info.value) == (
        "no installed ark plugin named 'fake' (installed: none); failed to load: "
        "bad local (entry point 'bad'): PluginError: registration returned str, not a PluginSpec"
    )


async def test_gateway_runs_enabled_plugin_and_drops_duplicate_events(loopback, tmp_path, caplog):
    calls = []
    acked = trio.Event()

    class Observer:
        @hookimpl
        def arkrelay_startup(self, gateway):
            calls.append("startup")
            raise RuntimeError("observer bug")  # must not break the gateway

        @hookimpl
        def arkrelay_shutdown(self, gateway):
            calls.append(("shutdown", gateway.statistics()["inbound"]))

        @hookimpl
        def arkrelay_event_published(self, event):
            calls.append(("published", event.id))
            acked.set()

    registry = load_plugins(entry_points=[], extra=[("loopback", loopback), ("obs", Observer())])
    config = load_config_text(
        f'[gateway]\ndata_dir = "{tmp_path}"\n[transport.loopback]\nlabel = "l1"\n',
        source="gw.toml",
        settings_resolver=registry.settings_type,
    )
    upgrade(config.gateway.database)
    engine = create_engine_for(config.gateway.database)
    identity = open_identity(config.gateway.key_file, config.gateway.network, environ={})
    gateway = Gateway(config, registry, identity, session_factory(engine))
    transport = gateway.components.transports["loopback"]
    assert transport.context.listening_pubkeys() == [identity.pubkey]

    wallet = generate_secret_key()
    # A kind the ceremony engine does not act on: this test is about the host and dedup.
    event = sign_event(wallet, kind=1, content="hello", tags=[["p", identity.pubkey]])
    with caplog.at_level(logging.ERROR), trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)
            await transport.publish(event)
            await transport.publish(event)  # the same event again, as a second relay would
            await gateway.wait_inbound_handled(2)
            # The gateway's own event goes through the durable outbox to the transport
            # (which echoes it back, so it arrives as inbound too).
            answer = identity.sign_event(31340, "{}", [["d", "a1"]])
            await gateway.publish(answer)
            await gateway.wait_inbound_handled(3)
            await acked.wait()
            nursery.cancel_scope.cancel()

    assert calls == ["startup", ("published", answer.id), ("shutdown", 2)]
    assert "observer obs.arkrelay_startup raised" in caplog.text
    stats = gateway.statistics()
    assert (stats["inbound"], stats["duplicates"]) == (2, 1)
    assert stats["components"]["transport.loopback"] == {"published": 3}
    assert stats["outbox"]["published"] == 1
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select id, kind from events_in")).all()
    assert sorted(rows) == sorted([(event.id, 1), (answer.id, 31340)])
    engine.dispose()


def test_a_factory_that_raises_is_reported_with_its_distribution(tmp_path):
    def explode(settings, context):
        raise OSError("port 7070 in use")

    registry = load_plugins(entry_points=[], extra=[("fakes", _Backends(_spec(factory=explode)))])
    config = load_config_text(
        f'[gateway]\ndata_dir = "{tmp_path}"\n[backend.ark]\nplugin = "fake"\n',
        source="gw.toml",
        settings_resolver=registry.settings_type,
    )
    identity = open_identity(config.gateway.key_file, config.gateway.network, environ={})
    with pytest.raises(PluginError) as info:
        Gateway(config, registry, identity, session_factory(create_engine_for("sqlite://")))
    assert str(info.value) == (
        "fakes local: building ark plugin 'fake' failed: OSError: port 7070 in use"
    )


class _Everything:
    """One plugin object registering every kind of record."""

    @hookimpl
    def arkrelay_register_transports(self):
        return [_spec(name="carrier", role="transport")]

    @hookimpl
    def arkrelay_register_settlement_strategies(self):
        return [_spec(name="weekly", role="settlement")]

    @hookimpl
    def arkrelay_register_intent_types(self):
        class Handler:
            async def prepare(self, intent, params, author):
                return [PayloadToSign(domain="x/v1", payload={}, human="sign")]

            async def execute(self, intent, params, author, signatures):
                return ActionResult(ark_txid="00" * 32)

        return [
            IntentTypeSpec(
                type="amm:swap", version="0.1.0", params_type=Settings, handler=Handler()
            )
        ]


def test_every_registration_hook_is_collected_with_its_role():
    registry = load_plugins(entry_points=[], extra=[("all", _Everything())])
    assert registry.failures == ()
    assert registry.names("transport") == ["carrier"]
    assert registry.names("settlement") == ["weekly"]
    [intent_type] = registry.intent_types
    assert intent_type.type == "amm:swap"
    assert isinstance(intent_type.handler, IntentHandler)


def test_a_spec_under_the_wrong_registration_hook_is_refused():
    class Confused:
        @hookimpl
        def arkrelay_register_settlement_strategies(self):
            return [_spec(role="ark")]

    registry = load_plugins(entry_points=[], extra=[("confused", Confused())])
    assert registry.names("ark") == []
    assert "has role 'ark', expected one of ['settlement']" in registry.failures[0].error


def test_plugins_add_their_simulator_commands():
    import click
    from click.testing import CliRunner

    class Simulators:
        @hookimpl
        def arkrelay_register_sim_commands(self, sim):
            @click.command("toyd")
            @click.argument("sats", type=int)
            def toyd(sats):
                click.echo(f"toyd holds {sats} sats")

            sim.add_command(toyd)

    @click.group()
    def sim():
        pass

    registry = load_plugins(entry_points=[], extra=[("toys", Simulators())])
    registry.plugin_manager.hook.arkrelay_register_sim_commands(sim=sim)
    result = CliRunner().invoke(sim, ["toyd", "21"])
    assert (result.exit_code, result.output) == (0, "toyd holds 21 sats\n")


async def test_a_transport_that_crashes_is_restarted(tmp_path):
    class Flaky:
        features = frozenset()
        starts = 0

        def __init__(self, settings, context):
            pass

        async def serve(self, inbound, *, task_status=trio.TASK_STATUS_IGNORED):
            type(self).starts += 1
            if type(self).starts == 1:
                raise ConnectionResetError("relay hung up")
            task_status.started()
            await trio.sleep_forever()

        async def publish(self, event):
            raise AssertionError("not used")

        def statistics(self):
            return {"starts": type(self).starts}

    class Plugin:
        @hookimpl
        def arkrelay_register_transports(self):
            return [_spec(name="flaky", role="transport", factory=Flaky)]

    registry = load_plugins(entry_points=[], extra=[("flaky", Plugin())])
    config = load_config_text(
        f'[gateway]\ndata_dir = "{tmp_path}"\n[transport.flaky]\n',
        source="gw.toml",
        settings_resolver=registry.settings_type,
    )
    identity = open_identity(config.gateway.key_file, config.gateway.network, environ={})
    upgrade(config.gateway.database)
    engine = create_engine_for(config.gateway.database)
    gateway = Gateway(config, registry, identity, session_factory(engine))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)  # the failed first start does not block it
            while gateway.statistics()["components"]["transport.flaky"]["starts"] < 2:  # noqa: ASYNC110
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    assert gateway.statistics()["transport_restarts"] == 1
    engine.dispose()
