"""A third-party action type runs a sign_payload ceremony (PROTOCOL.md §3): the wallet
recomputes the digest from ``context.payload``, the handler executes with the signature."""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec
import pytest

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import PluginError
from arkrelay_core.interfaces import ActionResult, IntentTypeSpec, PayloadToSign
from arkrelay_core.nostr import bip340
from arkrelay_core.plugins import hookimpl
from arkrelay_core.protocol import Kind, VtxoMove, sign_payload_digest

from .harness import running_gateway
from .wallet import ScriptedWallet

DOMAIN = "arkrelay/attest/v1"


class AttestParams(msgspec.Struct, forbid_unknown_fields=True):
    statements: list[str]


class Attest:
    """Asks the author to sign each statement, then records them (no money moves)."""

    def __init__(self) -> None:
        self.executed: list[tuple[str, list[str]]] = []

    async def prepare(self, intent, params, author):
        if "crash" in params.statements:
            raise ValueError("a bug in the plugin")
        return [
            PayloadToSign(DOMAIN, {"statement": s, "author": author}, f"Attest: {s}")
            for s in params.statements
        ]

    async def execute(self, intent, params, author, signatures):
        for statement, signature in zip(params.statements, signatures, strict=True):
            digest = sign_payload_digest(DOMAIN, {"statement": statement, "author": author})
            assert bip340.schnorr_verify(
                bytes.fromhex(author), bytes.fromhex(digest), bytes.fromhex(signature)
            )
        self.executed.append((author, list(signatures)))
        record = hashlib.sha256("".join(signatures).encode()).hexdigest()
        return ActionResult(ark_txid=record, created=(VtxoMove(f"{record}:0", author, record, 0),))


class AttestPlugin:
    def __init__(self, name: str = "attest:sign") -> None:
        self.handler = Attest()
        self.name = name

    @hookimpl
    def arkrelay_register_intent_types(self):
        return [IntentTypeSpec(self.name, "1.0", AttestParams, self.handler, ("attest",))]


async def test_plugin_type_collects_payload_signatures(tmp_path: Path, relay) -> None:
    plugin = AttestPlugin()
    async with (
        running_gateway(tmp_path / "gw", relay.url, observers=(("attest", plugin),)) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as wallet,
    ):
        intent = wallet.intent("attest", {"statements": ["I am here", "so is my key"]})
        outcome = await wallet.run_ceremony(intent)
        assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
        assert [author for author, _ in plugin.handler.executed] == [wallet.pubkey]
        assert len(plugin.handler.executed[0][1]) == 2
        bad = wallet.intent("attest", {"statements": "not a list"})
        refused = await wallet.run_ceremony(bad)
        assert refused.content["code"] == ErrorCode.MALFORMED_CONTENT
        # A handler that raises fails its session (9001); the gateway goes on.
        broken = await wallet.run_ceremony(wallet.intent("attest", {"statements": ["crash"]}))
        assert broken.content["code"] == ErrorCode.INTERNAL
        again = await wallet.run_ceremony(wallet.intent("attest", {"statements": ["still up"]}))
        assert again.event.kind == Kind.CONFIRMATION


async def test_a_plugin_type_may_not_shadow_a_builtin(tmp_path: Path, relay) -> None:
    with pytest.raises(PluginError, match="ark:transfer"):
        async with running_gateway(
            tmp_path / "gw", relay.url, observers=(("bad", AttestPlugin("ark:transfer")),)
        ):
            pass
