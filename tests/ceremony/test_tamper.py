"""A gateway that builds a transaction other than the intent's gets no signature from the
reference wallet; the session then times out (3002) with nothing submitted to arkd."""

from __future__ import annotations

from pathlib import Path

import pytest

from arkrelay_core.codes import ErrorCode
from arkrelay_core.protocol import Kind

from .harness import board, running_gateway
from .outcomes import action_id, transfer_params
from .tamper import ATTACKER, redirect, skim, tamper_outputs
from .wallet import ChallengeRefused, ScriptedWallet

SHORT_STEPS = '[ceremony]\nstep_timeout = "3s"\n'


@pytest.mark.parametrize(
    ("tamper", "refusal"),
    [
        (redirect, "no output pays 1000 sats to the recipient"),
        (lambda bob: skim(bob, 100), "no output pays 1000 sats to the recipient"),
    ],
    ids=["recipient-changed", "amount-changed"],
)
async def test_a_tampered_challenge_is_refused_and_nothing_is_submitted(
    tmp_path: Path, relay, tamper, refusal
) -> None:
    async with running_gateway(tmp_path / "gw", relay.url, extra=SHORT_STEPS) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        async with ScriptedWallet(relay.url, gw) as alice, ScriptedWallet(relay.url, gw) as bob:
            funded = await board(gateway, alice.pubkey, 5_000)
            tampering = tamper_outputs(gateway, tamper(bob.pubkey))
            intent = alice.intent("ark:transfer", transfer_params(bob.pubkey))
            with pytest.raises(ChallengeRefused, match=refusal):
                await alice.run_ceremony(intent)
            assert tampering.builds == 1
            [(challenge, why)] = alice.refused
            assert challenge.content["context"]["tx_role"] == "ark_tx" and refusal in why

            outcome = await alice.wait_outcome(action_id(intent), intent.id, timeout=30)
            assert outcome.event.kind == Kind.FAILURE
            assert outcome.content["code"] == ErrorCode.SIGNING_TIMEOUT
            status = await alice.call("get_status", action_id=action_id(intent))
            assert status["state"] in ("failed", "expired")
        # Nothing reached arkd: no pending tx, the VTXO unspent, nothing for the attacker.
        assert ark.simulator.ledger.pending_txs() == []
        mine = await ark.list_vtxos(alice.pubkey)
        assert [(v.vtxo_id, v.status) for v in mine] == [(funded.vtxo_id, "spendable")]
        assert await ark.list_vtxos(ATTACKER) == []
