"""Observer hooks fire after each commit; an observer that raises never breaks a session."""

from __future__ import annotations

from pathlib import Path

from arkrelay_core.plugins import hookimpl
from arkrelay_core.protocol import Kind, SessionState

from .harness import board, running_gateway
from .outcomes import transfer_params
from .wallet import ScriptedWallet


class Recorder:
    def __init__(self) -> None:
        self.moves: list[tuple[str, SessionState, SessionState]] = []
        self.intents: list[str] = []

    @hookimpl
    def arkrelay_session_transition(self, session, old, new):
        self.moves.append((session.id, old, new))

    @hookimpl
    def arkrelay_intent_received(self, intent):
        self.intents.append(intent.action_id)


class Broken:
    @hookimpl
    def arkrelay_session_transition(self, session, old, new):
        raise RuntimeError("observer bug")


async def test_transitions_are_observed_in_order(tmp_path: Path, relay, caplog) -> None:
    recorder = Recorder()
    observers = (("recorder", recorder), ("broken", Broken()))
    async with (
        running_gateway(tmp_path / "gw", relay.url, observers=observers) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as alice,
    ):
        await board(gateway, alice.pubkey, 5_000)
        intent = alice.intent(
            "ark:transfer",
            transfer_params("ab" * 32),
            action_id="observed",
        )
        outcome = await alice.run_ceremony(intent)
    assert outcome.event.kind == Kind.CONFIRMATION
    assert recorder.intents == ["observed"]
    assert [(old, new) for _, old, new in recorder.moves] == [
        (SessionState.INTENT_RECEIVED, SessionState.ARK_TX_PREPARED),
        (SessionState.ARK_TX_PREPARED, SessionState.CHECKPOINT_TXS_PREPARED),
        (SessionState.CHECKPOINT_TXS_PREPARED, SessionState.SIGNATURES_COLLECTED),
        (SessionState.SIGNATURES_COLLECTED, SessionState.ARK_EXECUTED),
        (SessionState.ARK_EXECUTED, SessionState.COMPLETED),
    ]
    assert "observer broken.arkrelay_session_transition raised" in caplog.text
