"""The JavaScript reference wallet (examples/wallet_js) against the real gateway.

The wallet's CLI runs under node as a subprocess, talking to the gateway through a real
nostr-relay; the test reads its JSON lines and checks the backends. A second part feeds
the wallet's checks PSBTs and challenges built by the Python reference (arktx), honest
and tampered, so a wallet that refuses everything or signs everything fails either way.

Without node or without ``npm ci --prefix examples/wallet_js`` these tests are skipped,
unless ``ARKRELAY_REQUIRE_NODE=1``, which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from arkrelay_arkd import arktx, intentproof
from arkrelay_arkd.tapscript import csv_closure, default_vtxo_tree
from embit.script import Script

from arkrelay_core.codes import ErrorCode
from arkrelay_core.interfaces import InvoiceState, PaymentStatus
from arkrelay_core.nostr import bip340, sign_event
from arkrelay_core.protocol import (
    Kind,
    challenge_d,
    payload_ref,
    session_id_for,
    sign_payload_digest,
)
from tests.support import need_node

from .harness import board, outside_node, running_gateway
from .tamper import ATTACKER, redirect, skim, tamper_outputs
from .test_plugin_types import AttestPlugin

pytestmark = pytest.mark.node

WALLET_DIR = Path(__file__).resolve().parents[2] / "examples" / "wallet_js"
CLI = WALLET_DIR / "cli.mjs"
GBTC = "gBTC"
#: The CLI's own --timeout; the test allows a little more before it kills the process.
CLI_TIMEOUT = 60
SHORT_STEPS = '[ceremony]\nstep_timeout = "3s"\n'
#: The CLI's exit statuses (README.md).
EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 3


@pytest.fixture(autouse=True)
def _needs_node() -> None:
    need_node(WALLET_DIR, ["nostr-tools", "ws", "@scure/btc-signer"])


# ---------------------------------------------------------------------------- the CLI


@dataclass
class CliRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    def one(self, name: str) -> dict[str, Any]:
        found = self.of(name)
        assert len(found) == 1, f"expected one {name!r} line: {self}"
        return found[0]

    def __str__(self) -> str:
        lines = "\n".join(json.dumps(e) for e in self.events)
        return f"exit {self.returncode}\n--- stdout\n{lines}\n--- stderr\n{self.stderr}"


@dataclass
class JsWallet:
    """One key, driven through the node CLI."""

    relay_url: str
    gateway: str
    secret: bytes = field(default_factory=bip340.generate_secret_key)

    @property
    def pubkey(self) -> str:
        return bip340.xonly_public_key(self.secret).hex()

    async def run(
        self,
        *args: str,
        on_event: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> CliRun:
        command = [
            "node",
            str(CLI),
            "--relay",
            self.relay_url,
            "--gateway",
            self.gateway,
            "--timeout",
            str(CLI_TIMEOUT),
            *args,
        ]
        # The key goes by environment, not argv, as a real user's should.
        env = {**os.environ, "ARKRELAY_WALLET_SECRET": self.secret.hex()}
        events: list[dict[str, Any]] = []
        stderr = bytearray()
        process = await trio.lowlevel.open_process(
            command, cwd=WALLET_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            with trio.fail_after(CLI_TIMEOUT + 30):
                async with trio.open_nursery() as nursery:

                    async def drain() -> None:
                        async for chunk in process.stderr:
                            stderr.extend(chunk)

                    nursery.start_soon(drain)
                    buffer = b""
                    async for chunk in process.stdout:
                        buffer += chunk
                        while b"\n" in buffer:
                            line, buffer = buffer.split(b"\n", 1)
                            event = json.loads(line)
                            events.append(event)
                            if on_event is not None:
                                await on_event(event)
                    assert not buffer, f"unterminated output line {buffer!r}"
                returncode = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
        return CliRun(returncode, events, stderr.decode(errors="replace"))


async def amounts(gateway, owner: str) -> list[int]:
    return sorted(v.amount for v in await gateway.components.backends["ark"].list_vtxos(owner))


def signed_steps(run: CliRun) -> list[int]:
    return [e["step"] for e in run.of("signed")]


# ---------------------------------------------------------------------------- end to end


async def test_lift_pays_the_invoice_and_the_wallet_owns_the_vtxo(tmp_path: Path, relay) -> None:
    async with running_gateway(tmp_path / "gw", relay.url) as gateway:
        wallet = JsWallet(relay.url, gateway.identity.pubkey)
        info = await wallet.run("info")
        assert info.returncode == EXIT_OK, info
        assert info.one("info")["service_pubkey"] == gateway.identity.pubkey
        assert info.one("info")["ark"]["dust"] > 0
        payments = []
        async with outside_node(gateway) as payer, trio.open_nursery() as nursery:

            async def pay(bolt11: str) -> None:
                payments.append(
                    await payer.pay_invoice(bolt11, fee_limit_sat=10, timeout_seconds=60)
                )

            async def on_event(event: dict[str, Any]) -> None:
                if event["event"] == "invoice":
                    nursery.start_soon(pay, event["bolt11"])

            run = await wallet.run("lift", "2000", on_event=on_event)
        assert run.returncode == EXIT_OK, run
        invoice = run.one("invoice")
        outcome = run.one("outcome")
        assert outcome["kind"] == Kind.CONFIRMATION
        assert outcome["d"] == f"lift:{invoice['payment_hash']}"
        assert [p.status for p in payments] == [PaymentStatus.SUCCEEDED]
        assert await amounts(gateway, wallet.pubkey) == [2_000]
        lightning = gateway.components.backends["lightning"]
        settled = await lightning.lookup_invoice(invoice["payment_hash"])
        assert settled.state is InvoiceState.SETTLED


async def test_transfer_to_another_key(tmp_path: Path, relay) -> None:
    async with running_gateway(tmp_path / "gw", relay.url) as gateway:
        alice = JsWallet(relay.url, gateway.identity.pubkey)
        bob = JsWallet(relay.url, gateway.identity.pubkey)
        await board(gateway, alice.pubkey, 5_000)
        run = await alice.run("transfer", bob.pubkey, "1000")
        assert run.returncode == EXIT_OK, run
        # One VTXO: its ark-tx signature, then its checkpoint signature.
        assert [(e["step"], e["tx_role"]) for e in run.of("challenge")] == [
            (1, "ark_tx"),
            (2, "checkpoint"),
        ]
        assert signed_steps(run) == [1, 2]
        outcome = run.one("outcome")
        assert outcome["kind"] == Kind.CONFIRMATION
        assert outcome["ref_action_id"] == run.one("intent")["action_id"]
        assert outcome["fee_paid"]["amount"] == 10
        assert await amounts(gateway, bob.pubkey) == [1_000]
        assert await amounts(gateway, alice.pubkey) == [3_990]
        balance = await alice.run("balance")
        assert balance.returncode == EXIT_OK, balance
        assert sum(balance.one("balance")["balances"].values()) == 3_990

        # Each wallet's own view from the Ark server's REST indexer agrees with the gateway.
        for wallet, want in ((alice, 3_990), (bob, 1_000)):
            server = await wallet.run("server")
            assert server.returncode == EXIT_OK, server
            view = server.one("server")
            assert view["server_url"].startswith("http://127.0.0.1:")
            assert (view["agrees"], view["problems"]) == (True, [])
            assert view["balance"] == sum(view["gateway_balances"].values()) == want
            assert [v["amount"] for v in view["vtxos"]] == [want]


async def test_land_pays_an_outside_invoice(tmp_path: Path, relay) -> None:
    async with (
        running_gateway(tmp_path / "gw", relay.url) as gateway,
        outside_node(gateway) as shop,
    ):
        wallet = JsWallet(relay.url, gateway.identity.pubkey)
        await board(gateway, wallet.pubkey, 10_000)
        invoice = await shop.create_invoice(3_000_000, memo="js coffee", expiry=3600)
        run = await wallet.run("land", invoice.bolt11, "3000")
        assert run.returncode == EXIT_OK, run
        assert run.one("outcome")["kind"] == Kind.CONFIRMATION
        assert (await shop.lookup_invoice(invoice.payment_hash)).state is InvoiceState.SETTLED
        # 0.1 % fee, rounded up: 3 sats on top of the 3,000 landed.
        assert await amounts(gateway, wallet.pubkey) == [6_997]


@pytest.mark.parametrize(
    ("tampering", "why"),
    [
        ("redirect", "no output pays 1000 sats to the recipient"),
        ("skim recipient", "no output pays 1000 sats to the recipient"),
        ("skim change", "takes 1410 sats from the wallet"),
    ],
)
async def test_a_tampered_ark_tx_is_refused_and_nothing_moves(
    tmp_path: Path, relay, tampering: str, why: str
) -> None:
    async with running_gateway(tmp_path / "gw", relay.url, extra=SHORT_STEPS) as gateway:
        alice = JsWallet(relay.url, gateway.identity.pubkey)
        bob = JsWallet(relay.url, gateway.identity.pubkey)
        funded = await board(gateway, alice.pubkey, 5_000)
        # 400 sats: above dust, so the skimmed output is a plain VTXO (the 10-sat fee is
        # already the one sub-dust output an ark tx may have).
        rewrite = {
            "redirect": redirect(bob.pubkey),
            "skim recipient": skim(bob.pubkey, 400),
            "skim change": skim(alice.pubkey, 400),
        }[tampering]
        seen = tamper_outputs(gateway, rewrite)
        run = await alice.run("transfer", bob.pubkey, "1000")
        assert run.returncode == EXIT_REFUSED, run
        assert seen.builds == 1
        [refused] = run.of("refused")
        assert refused["step"] == 1 and why in refused["reason"], run
        assert run.of("signed") == []
        # The gateway gives up on the unanswered step: 3002, sent to the wallet.
        outcome = run.one("outcome")
        assert (outcome["kind"], outcome["code"]) == (Kind.FAILURE, ErrorCode.SIGNING_TIMEOUT)
        status = await alice.run("status", run.one("intent")["action_id"])
        assert status.returncode == EXIT_OK, status
        report = status.one("status")
        assert report["state"] == "expired"
        assert report["error"]["code"] == ErrorCode.SIGNING_TIMEOUT
        ark = gateway.components.backends["ark"]
        assert await ark.list_vtxos(ATTACKER) == []
        assert await amounts(gateway, bob.pubkey) == []
        assert [v.vtxo_id for v in await ark.list_vtxos(alice.pubkey)] == [funded.vtxo_id]


async def test_a_plugin_type_is_signed_as_a_payload(tmp_path: Path, relay) -> None:
    plugin = AttestPlugin()
    async with running_gateway(
        tmp_path / "gw", relay.url, observers=(("attest", plugin),)
    ) as gateway:
        wallet = JsWallet(relay.url, gateway.identity.pubkey)
        # Non-ASCII and a character beyond U+FFFF: the canonical JSON must match byte for byte.
        statements = ["café ☕", "naïve 😀 key order", "plain"]
        run = await wallet.run("intent", "attest", json.dumps({"statements": statements}))
        assert run.returncode == EXIT_OK, run
        assert {e["type"] for e in run.of("challenge")} == {"sign_payload"}
        assert signed_steps(run) == [1, 2, 3]
        assert run.one("outcome")["kind"] == Kind.CONFIRMATION
        assert [author for author, _ in plugin.handler.executed] == [wallet.pubkey]


# ---------------------------------------------------------------------------- the checks
#
# The same PSBTs the gateway would build (arkrelay_arkd.arktx), put in front of the wallet's
# checks through test/checks_driver.mjs. One node process per test keeps these fast.

DRIVER = WALLET_DIR / "test" / "checks_driver.mjs"
DELAY = 512
DUST = 330
DOMAIN = "arkrelay/attest/v1"


def js(cases: list[dict[str, Any]]) -> list[Any]:
    proc = subprocess.run(
        ["node", str(DRIVER)],
        input=json.dumps({"cases": cases}).encode(),
        capture_output=True,
        cwd=WALLET_DIR,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    results = json.loads(proc.stdout)["results"]
    assert len(results) == len(cases)
    return results


class Keys:
    def __init__(self) -> None:
        self.secrets = {
            name: bip340.generate_secret_key()
            for name in ("alice", "bob", "carol", "gateway", "signer", "forfeit")
        }

    def __getitem__(self, name: str) -> bytes:
        return bip340.xonly_public_key(self.secrets[name])


def _output(keys: Keys, owner: str, amount: int, *, form: str | None = None) -> Any:
    """(script, amount) paying ``owner``, in arkd's form for the amount unless ``form``."""
    tree = default_vtxo_tree(keys[owner], keys["signer"], DELAY)
    sub_dust = amount < DUST if form is None else form == "sub-dust"
    script = arktx.sub_dust_script(tree.output_key) if sub_dust else tree.pk_script
    return (script, amount)


def _spend(keys: Keys, owner: str, amount: int) -> arktx.VtxoSpend:
    tree = default_vtxo_tree(keys[owner], keys["signer"], DELAY)
    return arktx.VtxoSpend(os.urandom(32).hex(), 0, amount, tree, tree.leaves[1])


def ownership_proof(keys: Keys, owners: list[str]) -> Any:
    """A get-pending-tx ownership proof of one VTXO per owner, as the arkd plugin builds it."""
    inputs = []
    for owner in owners:
        tree = default_vtxo_tree(keys[owner], keys["signer"], DELAY)
        inputs.append(intentproof.ProofInput(os.urandom(32).hex(), 0, 5_000, tree, tree.leaves[1]))
    message = intentproof.get_pending_tx_message(int(time.time()) + 300)
    return intentproof.build_proof(message, inputs)


def build(
    keys: Keys, spends: list[tuple[str, int]], outputs: list[tuple[Any, int]]
) -> arktx.OffchainTxs:
    """An ark tx and its checkpoints; ``outputs`` items are already (script, amount)."""
    checkpoint_script = csv_closure(DELAY, keys["forfeit"])
    return arktx.build_offchain_txs(
        [_spend(keys, owner, amount) for owner, amount in spends], outputs, checkpoint_script
    )


class Scene:
    """Alice's wallet, her intent, and the gateway's challenges for its session."""

    def __init__(self, keys: Keys, type: str, params: dict[str, Any]) -> None:
        self.keys = keys
        content = {
            "action_id": str(uuid.uuid4()),
            "type": type,
            "params": params,
            "expires_at": int(time.time()) + 600,
            "network": "regtest",
            "protocol_version": "1.0",
        }
        self.intent = sign_event(
            keys.secrets["alice"], kind=int(Kind.INTENT), content=json.dumps(content), tags=[]
        )
        self.session_id = session_id_for(self.intent.id)
        self.challenges: list[dict[str, Any]] = []

    def challenge(
        self,
        content: dict[str, Any],
        *,
        step: int,
        total: int = 2,
        d: str | None = None,
        author: str = "gateway",
        **overrides: Any,
    ) -> Scene:
        full = {
            "session_id": self.session_id,
            "algo": "BIP340",
            "domain": "arkrelay/sign_tx/v1",
            "step_index": step,
            "step_total": total,
            "expires_at": int(time.time()) + 120,
            **content,
        }
        full.update(overrides)
        full.setdefault("payload_ref", payload_ref(full["payload_to_sign"]))
        event = sign_event(
            self.keys.secrets[author],
            kind=int(Kind.CHALLENGE),
            content="(encrypted)",
            tags=[
                ["p", self.keys["alice"].hex()],
                ["e", self.intent.id],
                ["d", d or challenge_d(self.session_id, step)],
            ],
        )
        self.challenges.append({"event": msgspec.to_builtins(event), "content": full})
        return self

    def sign_tx(self, psbt: Any, index: int, role: str, *, step: int, **overrides: Any) -> Scene:
        content = {
            "type": "sign_tx",
            "payload_to_sign": arktx.tapscript_sighash(psbt, index).hex(),
            "context": {
                "psbt": arktx.encode_psbt(psbt),
                "input_index": index,
                "tx_role": role,
                "human": "sign",
                "amount": 0,
                "asset_id": GBTC,
            },
        }
        return self.challenge(content, step=step, **overrides)

    def proof(self, psbt: Any, index: int, *, step: int, total: int, **overrides: Any) -> Scene:
        """A proof challenge (tx_role intent_proof), its digest as the gateway computes it."""
        message = psbt.unknown[intentproof.GLOBAL_MESSAGE_KEY].decode()
        content = {
            "type": "sign_tx",
            "payload_to_sign": intentproof.proof_sighashes(psbt, message)[index].sighash.hex(),
            "context": {
                "psbt": arktx.encode_psbt(psbt),
                "input_index": index,
                "tx_role": "intent_proof",
                "human": "prove ownership; moves no funds",
                "amount": 0,
                "asset_id": "",
            },
        }
        return self.challenge(content, step=step, total=total, **overrides)

    def case(self) -> dict[str, Any]:
        ark = {
            "signer_pubkey": self.keys["signer"].hex(),
            "unilateral_exit_delay": DELAY,
            "dust": DUST,
        }
        return {
            "op": "session",
            "intent": msgspec.to_builtins(self.intent),
            "wallet": {
                "pubkey": self.keys["alice"].hex(),
                "gateway": self.keys["gateway"].hex(),
                "ark": ark,
            },
            "challenges": self.challenges,
        }


def transfer_to(keys: Keys, amount: int = 1_000) -> dict[str, Any]:
    return {
        "asset_id": GBTC,
        "amount": amount,
        "recipient_pubkey": keys["bob"].hex(),
        "fee": {"asset_id": GBTC, "amount": 10},
    }


def test_scripts_sighashes_and_digests_match_the_python_reference() -> None:
    keys = Keys()
    cases: list[dict[str, Any]] = []
    expected: list[Any] = []
    for delay in (144, 512, 1024, 86_016):
        owner = bip340.xonly_public_key(bip340.generate_secret_key())
        cases.append(
            {
                "op": "vtxo_script",
                "owner": owner.hex(),
                "signer": keys["signer"].hex(),
                "delay": delay,
            }
        )
        expected.append(default_vtxo_tree(owner, keys["signer"], delay).pk_script.hex())
    # Two owners' inputs, a sub-dust output: every input of the ark tx and of each checkpoint.
    txs = build(
        keys,
        [("alice", 4_000), ("carol", 2_500)],
        [_output(keys, "bob", 6_000), _output(keys, "gateway", 20), _output(keys, "alice", 480)],
    )
    for psbt in (txs.ark_tx, *txs.checkpoints):
        for index in range(len(psbt.inputs)):
            cases.append({"op": "psbt", "psbt": arktx.encode_psbt(psbt), "index": index})
            expected.append(
                {
                    "sighash": arktx.tapscript_sighash(psbt, index).hex(),
                    "txid": arktx.txid(psbt),
                    "keys": [k.hex() for k in arktx.signature_keys(psbt, index)],
                    "commits": True,
                }
            )
    payloads = [
        {"statement": "café ☕", "author": keys["alice"].hex()},
        {
            "z": [1, -2, {"b": None, "a": True}],
            "é": 'tab\tquote"back\\slash\u0001\u007f',
            "😀": 3,
            "\uffff": 4,
        },
        {"nested": {"k2": [], "k1": {}}, "big": 2**53 - 1},
    ]
    for payload in payloads:
        cases.append({"op": "digest", "domain": DOMAIN, "payload": payload})
        expected.append(sign_payload_digest(DOMAIN, payload))
    assert js(cases) == expected


def test_the_checks_sign_honest_challenges_and_refuse_the_rest() -> None:
    keys = Keys()
    honest = build(
        keys,
        [("alice", 5_000)],
        [_output(keys, "bob", 1_000), _output(keys, "gateway", 10), _output(keys, "alice", 3_990)],
    )
    [checkpoint] = honest.checkpoints
    redirected = build(
        keys,
        [("alice", 5_000)],
        [
            _output(keys, "carol", 1_000),
            _output(keys, "gateway", 10),
            _output(keys, "alice", 3_990),
        ],
    )
    greedy = build(
        keys,
        [("alice", 5_000)],
        [_output(keys, "bob", 1_000), _output(keys, "gateway", 410), _output(keys, "alice", 3_590)],
    )
    shared = build(
        keys,
        [("alice", 5_000), ("carol", 2_000)],
        [
            _output(keys, "bob", 1_000),
            _output(keys, "gateway", 10),
            _output(keys, "alice", 3_990),
            _output(keys, "carol", 2_000),
        ],
    )
    # The change in the sub-dust form: a VTXO the wallet could not spend on its own.
    stranded = build(
        keys,
        [("alice", 5_000)],
        [
            _output(keys, "bob", 1_000),
            _output(keys, "gateway", 10),
            _output(keys, "alice", 3_990, form="sub-dust"),
        ],
    )
    tiny = build(
        keys,
        [("alice", 5_000)],
        [_output(keys, "bob", 100), _output(keys, "gateway", 10), _output(keys, "alice", 4_890)],
    )
    # The input's witness utxo names an output its leaf is not in.
    detached = arktx.decode_psbt(arktx.encode_psbt(honest.ark_tx))
    elsewhere = default_vtxo_tree(keys["carol"], keys["signer"], DELAY).pk_script
    detached.inputs[0].witness_utxo.script_pubkey = Script(elsewhere)

    def scene(params: dict[str, Any] | None = None, type: str = "ark:transfer") -> Scene:
        return Scene(keys, type, params or transfer_to(keys))

    cases = {
        "honest transfer, both rounds": scene()
        .sign_tx(honest.ark_tx, 0, "ark_tx", step=1)
        .sign_tx(checkpoint, 0, "checkpoint", step=2),
        "checkpoint before any ark tx": scene().sign_tx(checkpoint, 0, "checkpoint", step=2),
        "checkpoint of another ark tx": scene()
        .sign_tx(redirected.ark_tx, 0, "ark_tx", step=1)
        .sign_tx(checkpoint, 0, "checkpoint", step=2),
        "recipient replaced": scene().sign_tx(redirected.ark_tx, 0, "ark_tx", step=1),
        "change skimmed into the fee": scene().sign_tx(greedy.ark_tx, 0, "ark_tx", step=1),
        "change stranded below dust form": scene().sign_tx(stranded.ark_tx, 0, "ark_tx", step=1),
        "sub-dust payment in its proper form": scene(transfer_to(keys, 100)).sign_tx(
            tiny.ark_tx, 0, "ark_tx", step=1
        ),
        "someone else's input": scene().sign_tx(shared.ark_tx, 1, "ark_tx", step=1),
        "our input of a shared tx": scene().sign_tx(shared.ark_tx, 0, "ark_tx", step=1),
        "digest of another tx": scene().sign_tx(
            honest.ark_tx,
            0,
            "ark_tx",
            step=1,
            payload_to_sign=arktx.tapscript_sighash(checkpoint, 0).hex(),
        ),
        "leaf not in the spent output": scene().sign_tx(detached, 0, "ark_tx", step=1),
        "wrong d tag": scene().sign_tx(honest.ark_tx, 0, "ark_tx", step=1, d="sess_x:1"),
        "not from the gateway": scene().sign_tx(honest.ark_tx, 0, "ark_tx", step=1, author="carol"),
        "payload_ref of something else": scene().sign_tx(
            honest.ark_tx, 0, "ark_tx", step=1, payload_ref="sha256:" + "00" * 32
        ),
        "another session": scene().sign_tx(
            honest.ark_tx, 0, "ark_tx", step=1, session_id="sess_" + "0" * 24
        ),
        "expired": scene().sign_tx(
            honest.ark_tx, 0, "ark_tx", step=1, expires_at=int(time.time()) - 1
        ),
    }
    land = {
        "asset_id": GBTC,
        "amount": 3_000,
        "lightning_invoice": "lnbcrt30u1...",
        "fee": {"asset_id": GBTC, "amount": 3},
    }
    landed = build(
        keys, [("alice", 5_000)], [_output(keys, "gateway", 3_003), _output(keys, "alice", 1_997)]
    )
    short = build(
        keys,
        [("alice", 5_000)],
        [
            _output(keys, "gateway", 2_003),
            _output(keys, "carol", 1_000),
            _output(keys, "alice", 1_997),
        ],
    )
    cases["honest land"] = scene(land, "lightning:land").sign_tx(landed.ark_tx, 0, "ark_tx", step=1)
    cases["land paying the gateway too little"] = scene(land, "lightning:land").sign_tx(
        short.ark_tx, 0, "ark_tx", step=1
    )
    cases["a type without output rules"] = scene({"x": 1}, "amm:swap").sign_tx(
        honest.ark_tx, 0, "ark_tx", step=1
    )
    payload = {"statement": "I am here", "author": keys["alice"].hex()}
    digest = sign_payload_digest(DOMAIN, payload)
    attest = {
        "type": "sign_payload",
        "domain": DOMAIN,
        "payload_to_sign": digest,
        "context": {"payload": payload},
    }
    cases["honest payload"] = scene({"statements": ["I am here"]}, "attest").challenge(
        attest, step=1, total=1
    )
    cases["payload digest of another payload"] = scene(
        {"statements": ["I am here"]}, "attest"
    ).challenge(
        {
            **attest,
            "payload_to_sign": sign_payload_digest(DOMAIN, {**payload, "statement": "I owe you"}),
        },
        step=1,
        total=1,
    )
    cases["payload for a transfer"] = scene().challenge(attest, step=1, total=1)
    # Ownership proofs: a gateway recovering a lost SubmitTx answer (steps after step_total).
    proof = ownership_proof(keys, ["alice"])
    paying = ownership_proof(keys, ["alice"])
    paying.outputs[0].value = 5_000
    paying.outputs[0].script_pubkey = Script(_output(keys, "gateway", 5_000)[0])
    cases["honest ownership proof"] = (
        scene()
        .sign_tx(honest.ark_tx, 0, "ark_tx", step=1)
        .proof(proof, 0, step=3, total=4)
        .proof(proof, 1, step=4, total=4)
    )
    cases["ownership proof before any ark tx"] = scene().proof(proof, 1, step=3, total=4)
    cases["a spend disguised as a proof"] = (
        scene()
        .sign_tx(honest.ark_tx, 0, "ark_tx", step=1)
        .sign_tx(checkpoint, 0, "intent_proof", step=3, total=4)
    )
    cases["a proof carrying a spend's sighash"] = (
        scene()
        .sign_tx(honest.ark_tx, 0, "ark_tx", step=1)
        .proof(
            proof, 1, step=3, total=4, payload_to_sign=arktx.tapscript_sighash(checkpoint, 0).hex()
        )
    )
    cases["a proof that pays"] = (
        scene().sign_tx(honest.ark_tx, 0, "ark_tx", step=1).proof(paying, 1, step=3, total=4)
    )
    cases["a proof of someone else's VTXO too"] = (
        scene()
        .sign_tx(honest.ark_tx, 0, "ark_tx", step=1)
        .proof(ownership_proof(keys, ["alice", "carol"]), 1, step=3, total=4)
    )

    verdicts = dict(zip(cases, js([s.case() for s in cases.values()]), strict=True))
    signed = ["signed"]
    expected_reasons = {
        "honest transfer, both rounds": ["signed", "signed"],
        "checkpoint before any ark tx": ["not an input of an ark tx this wallet approved"],
        "checkpoint of another ark tx": [
            "no output pays 1000 sats to the recipient",
            "not an input of an ark tx",
        ],
        "recipient replaced": ["no output pays 1000 sats to the recipient"],
        "change skimmed into the fee": ["takes 1410 sats from the wallet (5000 in, 3590 back)"],
        "change stranded below dust form": ["takes 5000 sats from the wallet"],
        "sub-dust payment in its proper form": signed,
        "someone else's input": ["is spent by keys"],
        "our input of a shared tx": signed,
        "digest of another tx": ["is not the sighash"],
        "leaf not in the spent output": ["is not in the output it spends"],
        "wrong d tag": ["d tag"],
        "not from the gateway": ["not the gateway"],
        "payload_ref of something else": ["payload_ref is not sha256:<payload_to_sign>"],
        "another session": ["not the session of intent"],
        "expired": ["expired at"],
        "honest land": signed,
        "land paying the gateway too little": [
            "pays the gateway 2003 sats, the invoice needs 3000"
        ],
        "a type without output rules": ["no output rules for a amm:swap"],
        "honest payload": signed,
        "payload digest of another payload": ["is not the digest"],
        "payload for a transfer": ["a ark:transfer is signed with sign_tx"],
        "honest ownership proof": ["signed", "signed", "signed"],
        "ownership proof before any ark tx": ["whose ark tx this wallet never signed"],
        "a spend disguised as a proof": ["signed", "the proof carries no message"],
        "a proof carrying a spend's sighash": ["signed", "is not the sighash"],
        "a proof that pays": ["signed", "the proof pays 5000 sats"],
        "a proof of someone else's VTXO too": ["signed", "proof input 2 is not a VTXO of this"],
    }
    assert verdicts.keys() == expected_reasons.keys()
    for name, reasons in expected_reasons.items():
        got = verdicts[name]
        assert len(got) == len(reasons), (name, got)
        for verdict, reason in zip(got, reasons, strict=True):
            if reason == "signed":
                assert verdict == "signed", (name, verdict)
            else:
                assert verdict.startswith("refused: ") and reason in verdict, (name, verdict)


# ---------------------------------------------------------------------------- the relay's OK


def test_ok_answers_and_the_backoff_under_node() -> None:
    """test/delivery.test.mjs: how the wallet judges each OK (and nostr-tools' ways of
    settling a publish), the backoff schedule and the pacer."""
    run = subprocess.run(
        ["node", "--test", "test/delivery.test.mjs"],
        cwd=WALLET_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# pass 4" in run.stdout and "# fail 0" in run.stdout, run.stdout
