"""Observers are called through pluggy, one plugin at a time: an implementation may take
only the arguments it wants, and one that raises neither stops the others nor the
ceremony."""

from __future__ import annotations

from pathlib import Path

from arkrelay_core.interfaces import SessionView
from arkrelay_core.plugins import hookimpl
from arkrelay_core.protocol import Kind

from .harness import board, running_gateway
from .outcomes import transfer_params
from .wallet import ScriptedWallet


class SessionsOnly:
    """Takes one of the three arguments ``arkrelay_session_transition`` is called with."""

    def __init__(self) -> None:
        self.seen: list[SessionView] = []

    @hookimpl
    def arkrelay_session_transition(self, session):
        self.seen.append(session)


class Broken:
    @hookimpl
    def arkrelay_session_transition(self, session, old, new):
        raise RuntimeError("observer bug")

    @hookimpl
    def arkrelay_intent_received(self, intent):
        raise RuntimeError("observer bug")


async def test_a_partial_observer_is_called_after_one_that_raises(
    tmp_path: Path, relay, caplog
) -> None:
    partial = SessionsOnly()
    # pluggy calls the last registered first: the broken observer raises before the
    # partial one is reached.
    observers = (("partial", partial), ("broken", Broken()))
    async with (
        running_gateway(tmp_path / "gw", relay.url, observers=observers) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as alice,
    ):
        await board(gateway, alice.pubkey, 5_000)
        intent = alice.intent("ark:transfer", transfer_params("ab" * 32), action_id="partial")
        outcome = await alice.run_ceremony(intent)
    assert outcome.event.kind == Kind.CONFIRMATION
    assert len(partial.seen) == 5
    assert all(isinstance(s, SessionView) for s in partial.seen)
    assert {s.author for s in partial.seen} == {alice.pubkey}
    assert [s.type for s in partial.seen] == ["ark:transfer"] * 5
    assert "observer broken.arkrelay_session_transition raised" in caplog.text
    assert "observer broken.arkrelay_intent_received raised" in caplog.text
    assert "observer partial" not in caplog.text
