"""The JavaScript wallet finishes, at the Ark server itself, a spend the gateway submitted
and could not finalize (docs/protocol.md, "After SubmitTx the transaction is never
abandoned"): from a 31341's ``pending_tx``, or through GetPendingTx when it holds nothing.

Real processes: the gateway and its arkd simulator (gRPC for the gateway, arkd's REST
interface for the wallet), a real relay, and the wallet under node. The wallet goes quiet
after signing the ark tx (``test/handover_driver.mjs``, or a Python wallet with the same
key), so the gateway hands the submitted tx over at the session's deadline. What the Ark
server then shows is read from its REST indexer, as any wallet would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
from arkrelay_arkd import arktx
from arkrelay_arkd.tapscript import default_vtxo_tree
from embit.script import Script

from arkrelay_core.codes import ErrorCode
from arkrelay_core.protocol import Kind
from tests.support import need_node

from .harness import board, running_gateway
from .outcomes import action_id, transfer_params
from .tamper import ATTACKER
from .test_third_parties import challenge_for
from .test_wallet_js import (
    WALLET_DIR,
    JsWallet,
    Keys,
    Scene,
    _output,
    build,
    js,
    transfer_to,
)
from .wallet import ScriptedWallet

pytestmark = pytest.mark.node

DRIVER = WALLET_DIR / "test" / "handover_driver.mjs"
#: Short enough that the hand-over comes quickly, long enough for a loaded machine to
#: collect the ark tx's signature and submit it first.
TIMING = '[ceremony]\nstep_timeout = "2s"\nsession_timeout = "10s"\n'
EXIT_OK, EXIT_REFUSED = 0, 3


@pytest.fixture(autouse=True)
def _needs_node() -> None:
    need_node(WALLET_DIR, ["nostr-tools", "ws", "@scure/btc-signer"])


async def indexer(server_url: str, **params: Any) -> list[dict[str, Any]]:
    """GET /v1/indexer/vtxos on the Ark server, as its JSON lists them."""
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=server_url, timeout=10) as client:
            response = await client.get("/v1/indexer/vtxos", params=params)
    assert response.status_code == 200, response.text
    return response.json()["vtxos"]


def ids(vtxo: dict[str, Any]) -> str:
    return f"{vtxo['outpoint']['txid']}:{vtxo['outpoint']['vout']}"


async def handed_over(alice: JsWallet, bob: str) -> Any:
    """Run alice's quiet-after-submit transfer of 1,000 sats to ``bob``."""
    return await alice.node([str(DRIVER), alice.relay_url, alice.gateway, bob, "1000", "10"])


async def test_a_handed_over_tx_is_finalized_by_the_js_wallet_over_rest(
    tmp_path: Path, relay
) -> None:
    async with running_gateway(tmp_path / "gw", relay.url, extra=TIMING) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        server_url = ark.server_url
        alice, bob = JsWallet(relay.url, gw), JsWallet(relay.url, gw)
        funded = await board(gateway, alice.pubkey, 5_000)

        run = await handed_over(alice, bob.pubkey)
        assert run.returncode == EXIT_OK, str(run)
        assert [e["step"] for e in run.of("signed")] == [1]
        assert run.of("withheld"), run  # the checkpoint went unanswered
        outcome = run.one("outcome")
        assert (outcome["kind"], outcome["code"]) == (Kind.FAILURE, ErrorCode.SIGNING_TIMEOUT)
        pending = outcome["pending_tx"]
        finalized = run.one("finalized")
        assert (finalized["ark_txid"], finalized["signed"]) == (pending["ark_txid"], 1)
        assert run.one("finalizing")["server_url"] == server_url
        assert run.of("finalize_refused") == []

        # The Ark server's own indexer: the VTXO spent by the ark tx, its outputs created.
        ark_txid = pending["ark_txid"]
        [spent] = await indexer(server_url, outpoints=funded.vtxo_id)
        assert (spent["isSpent"], spent["spentBy"] != "") == (True, True)
        created = await indexer(server_url, outpoints=[f"{ark_txid}:{i}" for i in range(3)])
        assert sorted(int(v["amount"]) for v in created) == [10, 1_000, 3_990]
        assert not any(v["isSpent"] for v in created)
        assert ark.simulator.ledger.pending_txs() == []

        # Balances as each side sees them: the backend, and the wallet's own view (the
        # Ark server's indexer compared with the gateway's sync_state).
        assert [v.amount for v in await ark.list_vtxos(bob.pubkey)] == [1_000]
        assert [v.amount for v in await ark.list_vtxos(alice.pubkey)] == [3_990]
        for wallet, want in ((alice, 3_990), (bob, 1_000)):
            view = await wallet.run("server")
            assert view.returncode == EXIT_OK, view
            assert (view.one("server")["balance"], view.one("server")["agrees"]) == (want, True)


def lie_about_outputs(gateway, signer: bytes, delay: int, amount: int) -> list[str]:
    """From now on, the pending tx the gateway hands over pays the ``amount`` output to
    :data:`ATTACKER` (the txid made to match, as a careful liar would). Returns the txids
    of the honest txs it replaced."""
    submitted = gateway.engine.driver.submitted
    honest = submitted.pending_tx
    replaced: list[str] = []
    theirs = default_vtxo_tree(bytes.fromhex(ATTACKER), signer, delay).pk_script

    def lying(db, row):
        pending = honest(db, row)
        if pending is None:
            return None
        packet = arktx.decode_psbt(pending.final_ark_tx)
        [out] = [o for o in packet.outputs if o.value == amount]
        out.script_pubkey = Script(theirs)
        replaced.append(pending.ark_txid)
        return msgspec.structs.replace(
            pending, ark_txid=arktx.txid(packet), final_ark_tx=arktx.encode_psbt(packet)
        )

    submitted.pending_tx = lying
    return replaced


async def test_a_tampered_pending_tx_is_refused_and_nothing_is_signed(
    tmp_path: Path, relay
) -> None:
    async with running_gateway(tmp_path / "gw", relay.url, extra=TIMING) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        alice, bob = JsWallet(relay.url, gw), JsWallet(relay.url, gw)
        funded = await board(gateway, alice.pubkey, 5_000)
        info = await ark.get_info()
        signer = bytes.fromhex(info.signer_pubkey)
        replaced = lie_about_outputs(gateway, signer, info.unilateral_exit_delay, 1_000)

        run = await handed_over(alice, bob.pubkey)
        assert run.returncode == EXIT_REFUSED, str(run)
        pending = run.one("outcome")["pending_tx"]
        assert replaced and pending["ark_txid"] != replaced[0]
        refused = run.one("finalize_refused")
        assert "no output pays 1000 sats to the recipient" in refused["reason"], run
        assert run.of("finalized") == []

        # Nothing reached the Ark server: the honest tx still waits for alice's checkpoint
        # signature, her VTXO stays locked by it, and no one was paid.
        assert [t for t, _, _ in ark.simulator.ledger.pending_txs()] == replaced
        locked = await indexer(ark.server_url, scripts=funded.script, pendingOnly="true")
        assert [ids(v) for v in locked] == [funded.vtxo_id]
        assert await ark.list_vtxos(ATTACKER) == []
        assert await ark.list_vtxos(bob.pubkey) == []


async def test_the_finalize_command_recovers_through_get_pending_tx(tmp_path: Path, relay) -> None:
    """The wallet that signed the ark tx went away and never saw the hand-over; the same
    key, later, on the CLI: ``finalize`` proves ownership of its locked VTXOs to
    GetPendingTx and finalizes what the Ark server returns."""
    async with running_gateway(tmp_path / "gw", relay.url, extra=TIMING) as gateway:
        gw = gateway.identity.pubkey
        ark = gateway.components.backends["ark"]
        alice, bob = JsWallet(relay.url, gw), JsWallet(relay.url, gw)
        funded = await board(gateway, alice.pubkey, 5_000)
        async with ScriptedWallet(relay.url, gw, secret=alice.secret) as quiet:
            intent = quiet.intent("ark:transfer", transfer_params(bob.pubkey))
            await quiet.publish(intent)
            await quiet.answer(await challenge_for(quiet, intent, 1))
            outcome = await quiet.wait_outcome(action_id(intent), intent.id, timeout=30)
        assert outcome.content["code"] == ErrorCode.SIGNING_TIMEOUT
        ark_txid = outcome.content["pending_tx"]["ark_txid"]
        assert await ark.list_vtxos(alice.pubkey) == []  # locked by the pending tx

        run = await alice.run("finalize")
        assert run.returncode == EXIT_OK, str(run)
        report = run.one("finalize")
        assert report["pending_vtxos"] == [funded.vtxo_id]
        assert report["finalized"] == [{"ark_txid": ark_txid, "signed": 1}]
        assert report["refused"] == []
        assert ark.simulator.ledger.pending_txs() == []
        [spent] = await indexer(ark.server_url, outpoints=funded.vtxo_id)
        assert spent["isSpent"] is True
        assert [v.amount for v in await ark.list_vtxos(bob.pubkey)] == [1_000]
        assert [v.amount for v in await ark.list_vtxos(alice.pubkey)] == [3_990]

        again = await alice.run("finalize")
        assert again.returncode == EXIT_OK, again
        assert again.one("finalize")["pending_vtxos"] == []


# ------------------------------------------------------------------ the checks, case by case
#
# Pending txs built by the Python reference (arktx), honest and not, put in front of
# checkPendingTx / signCheckpoints through test/checks_driver.mjs.


def pending_of(txs: arktx.OffchainTxs, **changes: Any) -> dict[str, Any]:
    pending = {
        "ark_txid": arktx.txid(txs.ark_tx),
        "final_ark_tx": arktx.encode_psbt(txs.ark_tx),
        "checkpoint_txs": [arktx.encode_psbt(c) for c in txs.checkpoints],
    }
    return {**pending, **changes}


def signed_by(keys: Keys, owner: str, txs: arktx.OffchainTxs, *inputs: int) -> arktx.OffchainTxs:
    for index in inputs:
        arktx.sign_input(txs.ark_tx, index, keys.secrets[owner])
    return txs


def test_the_checks_finalize_only_what_the_wallet_consented_to() -> None:
    keys = Keys()

    def pays(recipient: str) -> list[Any]:
        return [
            _output(keys, recipient, 1_000),
            _output(keys, "gateway", 10),
            _output(keys, "alice", 3_990),
        ]

    honest = signed_by(keys, "alice", build(keys, [("alice", 5_000)], pays("bob")), 0)
    unsigned = build(keys, [("alice", 5_000)], pays("bob"))
    redirected = signed_by(keys, "alice", build(keys, [("alice", 5_000)], pays("carol")), 0)
    other = signed_by(keys, "alice", build(keys, [("alice", 5_000)], pays("bob")), 0)
    shared = signed_by(
        keys,
        "alice",
        build(
            keys,
            [("alice", 5_000), ("carol", 2_000)],
            [*pays("bob"), _output(keys, "carol", 2_000)],
        ),
        0,
    )
    # A hand-over with every signature in: the wallet's own checkpoint signature is replaced.
    complete = signed_by(keys, "alice", build(keys, [("alice", 5_000)], pays("bob")), 0)
    arktx.sign_input(complete.checkpoints[0], 0, keys.secrets["alice"])

    def scene(approved: arktx.OffchainTxs) -> Scene:
        return Scene(keys, "ark:transfer", transfer_to(keys)).sign_tx(
            approved.ark_tx, 0, "ark_tx", step=1
        )

    def case(pending: dict[str, Any], session: Scene | None = None) -> dict[str, Any]:
        found = {"op": "pending", "pending": pending, "secret": keys.secrets["alice"].hex()}
        if session is None:
            return {**found, "wallet": Scene(keys, "ark:transfer", {}).case()["wallet"]}
        full = session.case()
        return {
            **found,
            "wallet": full["wallet"],
            "intent": full["intent"],
            "challenges": full["challenges"],
        }

    cases = {
        "honest, no session": case(pending_of(honest)),
        "honest, in its session": case(pending_of(honest), scene(honest)),
        "every signature already in": case(pending_of(complete)),
        "ark tx without the wallet's signature": case(pending_of(unsigned)),
        "a txid other than the tx's": case(pending_of(honest, ark_txid=arktx.txid(other.ark_tx))),
        "someone else's VTXO spent too": case(pending_of(shared)),
        "a checkpoint of another tx": case(
            pending_of(honest, checkpoint_txs=[arktx.encode_psbt(other.checkpoints[0])])
        ),
        "signed, but paying someone else": case(pending_of(redirected), scene(honest)),
        "signed, but not in this session": case(pending_of(other), scene(honest)),
    }
    results = dict(zip(cases, js(list(cases.values())), strict=True))
    for name in ("honest, no session", "honest, in its session", "every signature already in"):
        assert isinstance(results[name], dict), (name, results[name])
        [signed] = results[name]["signed"]
        verdicts = arktx.verify_input_signatures(arktx.decode_psbt(signed), 0)
        assert verdicts == {keys["alice"]: True}, name
    refusals = {
        "ark tx without the wallet's signature": "input 0 does not carry this wallet's signature",
        "a txid other than the tx's": "not the tx named",
        "someone else's VTXO spent too": "input 1 spends a VTXO that is not this wallet's",
        "a checkpoint of another tx": "is not spent by the ark tx",
        "signed, but paying someone else": "no output pays 1000 sats to the recipient",
        "signed, but not in this session": "not the ark tx this wallet signed in session",
    }
    for name, why in refusals.items():
        assert isinstance(results[name], str) and results[name].startswith("refused: "), (
            name,
            results[name],
        )
        assert why in results[name], (name, results[name])
