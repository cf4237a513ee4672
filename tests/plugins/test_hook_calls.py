"""How the host calls hooks whose implementations are third-party code: each plugin's
implementation through pluggy on its own, so it may take only some arguments, and one
that raises is reported without keeping the others from their call."""

from __future__ import annotations

import logging

import click
from click.testing import CliRunner

from arkrelay_core.cli import cli, plugin_commands
from arkrelay_core.plugins import hookimpl, load_plugins, notify_observers
from arkrelay_core.protocol import SessionState

NEW, OLD = SessionState.ARK_TX_PREPARED, SessionState.INTENT_RECEIVED


class Full:
    def __init__(self, calls: list[tuple[str, object]]) -> None:
        self.calls = calls

    @hookimpl
    def arkrelay_session_transition(self, session, old, new):
        self.calls.append(("full", (session, old, new)))


class NewOnly:
    def __init__(self, calls: list[tuple[str, object]]) -> None:
        self.calls = calls

    @hookimpl(tryfirst=True)
    def arkrelay_session_transition(self, new):
        self.calls.append(("new-only", new))


class Raises:
    @hookimpl
    def arkrelay_session_transition(self, session):
        raise RuntimeError(f"observer bug on {session}")


class Wraps:
    def __init__(self, calls: list[tuple[str, object]]) -> None:
        self.calls = calls

    @hookimpl(wrapper=True)
    def arkrelay_session_transition(self, session):
        self.calls.append(("around", session))
        return (yield)


def test_each_observer_gets_the_arguments_it_asks_for_and_a_raise_stops_none(caplog) -> None:
    calls: list[tuple[str, object]] = []
    registry = load_plugins(
        entry_points=[],
        extra=[
            ("full", Full(calls)),
            ("raises", Raises()),
            ("new-only", NewOnly(calls)),
            ("wraps", Wraps(calls)),
        ],
    )
    pm = registry.plugin_manager
    with caplog.at_level(logging.ERROR):
        notify_observers(pm, pm.hook.arkrelay_session_transition, session="s1", old=OLD, new=NEW)
    # pluggy's order: tryfirst first, then the last registered; the wrapper wraps each call.
    assert calls == [
        ("around", "s1"),
        ("new-only", NEW),
        ("around", "s1"),
        ("around", "s1"),
        ("full", ("s1", OLD, NEW)),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "observer raises.arkrelay_session_transition raised"
    ]
    assert "observer bug on s1" in caplog.text


def test_no_observer_is_no_call() -> None:
    pm = load_plugins(entry_points=[]).plugin_manager
    notify_observers(pm, pm.hook.arkrelay_session_transition, session="s", old=OLD, new=NEW)


@click.command("hello")
def _hello() -> None:
    click.echo("hello")


@click.command("run")
def _fake_run() -> None:
    click.echo("not the gateway")


class Commands:
    def __init__(self, *commands: click.Command) -> None:
        self.commands = commands

    @hookimpl
    def arkrelay_register_commands(self, cli):
        for command in self.commands:
            cli.add_command(command)


class BrokenCommands:
    @hookimpl
    def arkrelay_register_commands(self, cli):
        raise RuntimeError("command bug")


def test_plugin_commands_skip_taken_names_and_a_plugin_that_raises(caplog) -> None:
    registry = load_plugins(
        entry_points=[],
        extra=[
            ("first", Commands(_hello)),
            ("broken", BrokenCommands()),
            ("second", Commands(_fake_run, click.Command("hello"), click.Command("bye"))),
        ],
    )
    with caplog.at_level(logging.WARNING):
        found = plugin_commands(registry.plugin_manager)
    # "second" registered last, so pluggy reaches it first: its "hello" wins.
    assert sorted(found) == ["bye", "hello"]
    assert found["hello"] is not _hello
    messages = [r.getMessage() for r in caplog.records]
    assert "plugin second: command 'run' is taken; ignored" in messages
    assert "plugin first: command 'hello' is taken; ignored" in messages
    assert "plugin broken: arkrelay_register_commands raised" in messages


def test_the_workspace_wallet_adds_the_demo_command() -> None:
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0, result.output
    assert "Lift, transfer, split, swap and land" in result.output
