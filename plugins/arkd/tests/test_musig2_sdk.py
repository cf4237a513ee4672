"""arkrelay_arkd.musig2 against the MuSig2 of @arkade-os/sdk: @scure/btc-signer 2.0.1 (the
version the SDK 0.4.56 pins), driven by musig_peer.mjs the way the SDK's musig2 wrappers
drive it. The node peer is one cosigner and Python the others; every step's result must agree.

Without node or without ``npm ci --prefix examples/wallet_js`` these tests are skipped,
unless ``ARKRELAY_REQUIRE_NODE=1``, which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import coincurve
import pytest
import trio

from arkrelay_arkd import musig2
from tests.support import need_node

pytestmark = pytest.mark.node

WALLET_DIR = Path(__file__).resolve().parents[3] / "examples" / "wallet_js"
PEER = Path(__file__).parent / "musig_peer.mjs"


@pytest.fixture(autouse=True)
def _needs_node() -> None:
    need_node(WALLET_DIR, ["@scure/btc-signer", "@noble/curves"])


class Peer:
    """The node cosigner: one JSON request per line, one answer per line."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.buffer = b""

    async def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        await self.process.stdin.send_all(json.dumps({"op": op, **fields}).encode() + b"\n")
        while b"\n" not in self.buffer:
            chunk = await self.process.stdout.receive_some()
            assert chunk, "the node peer exited"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        answer = json.loads(line)
        assert "error" not in answer, answer["error"]
        return answer


@asynccontextmanager
async def node_peer() -> AsyncIterator[Peer]:
    process = await trio.lowlevel.open_process(
        ["node", str(PEER), str(WALLET_DIR)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield Peer(process)
    finally:
        # Closing stdin ends the peer's read loop; kill it if it lingers.
        await process.stdin.aclose()
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            os.killpg(process.pid, 9)
            await process.wait()


def python_signers(count: int) -> dict[bytes, bytes]:
    """Public key -> secret key."""
    keys = [coincurve.PrivateKey() for _ in range(count)]
    return {k.public_key.format(): k.secret for k in keys}


@pytest.mark.parametrize("odd_y", [False, True], ids=["even-aggregate", "odd-aggregate"])
@pytest.mark.parametrize("tweaked", [False, True], ids=["untweaked", "taproot-tweak"])
async def test_a_session_with_the_sdk_library_as_one_cosigner(tweaked: bool, odd_y: bool) -> None:
    with trio.fail_after(30):
        async with node_peer() as peer:
            node_pk = bytes.fromhex((await peer.ask("key"))["pubkey"])
            # The untweaked aggregate's parity decides whether the x-only tweak and the
            # signing key are negated: both branches are exercised.
            while True:
                ours = python_signers(2)
                parity = musig2.key_agg(musig2.key_sort([*ours, node_pk])).plain()[0]
                if (parity == 3) == odd_y:
                    break
            # Unsorted on purpose: both sides must sort the same way.
            pubkeys = [*ours, node_pk]
            root = secrets.token_bytes(32) if tweaked else None
            msg = secrets.token_bytes(32)
            common = {
                "pubkeys": [pk.hex() for pk in pubkeys],
                "root": None if root is None else root.hex(),
                "msg": msg.hex(),
            }

            # Same aggregate key, untweaked and final, parity included.
            agg = await peer.ask("aggregate", **common)
            untweaked = musig2.key_agg(musig2.key_sort(pubkeys))
            assert bytes.fromhex(agg["plain"]) == untweaked.plain()
            if root is None:
                final = untweaked
            else:
                final, output_key = musig2.aggregate_tree_key(pubkeys, root)
                assert output_key == final.xonly()
            assert bytes.fromhex(agg["final"]) == final.plain()

            # Round one: nonces, aggregated on both sides.
            nonces = {pk: musig2.nonce_gen(sk, pk, None, msg, None) for pk, sk in ours.items()}
            pubnonces = {pk: pubnonce for pk, (_, pubnonce) in nonces.items()}
            pubnonces[node_pk] = bytes.fromhex((await peer.ask("nonce", name="s"))["pubnonce"])
            aggnonce = musig2.nonce_agg([pubnonces[pk] for pk in pubkeys])
            theirs = await peer.ask("nonce_agg", pubnonces=[pubnonces[pk].hex() for pk in pubkeys])
            assert bytes.fromhex(theirs["aggnonce"]) == aggnonce

            # Round two: every share verifies on both sides.
            if root is None:
                session = musig2.SessionContext(aggnonce, musig2.key_sort(pubkeys), [], [], msg)
            else:
                session = musig2.tree_session(aggnonce, pubkeys, root, msg)
            assert session.key_agg_context() == final
            session_fields = {**common, "aggnonce": aggnonce.hex()}
            psigs = {pk: musig2.sign(nonces[pk][0], sk, session) for pk, sk in ours.items()}
            psigs[node_pk] = bytes.fromhex(
                (await peer.ask("sign", name="s", **session_fields))["psig"]
            )
            sorted_keys = musig2.key_sort(pubkeys)
            sorted_nonces = [pubnonces[pk] for pk in sorted_keys]
            for pk in pubkeys:
                i = sorted_keys.index(pk)
                assert musig2.partial_sig_verify(
                    psigs[pk],
                    sorted_nonces,
                    sorted_keys,
                    session.tweaks,
                    session.is_xonly,
                    msg,
                    i,
                ), f"python rejects the share of {pk.hex()}"
                verdict = await peer.ask(
                    "verify",
                    psig=psigs[pk].hex(),
                    signer=pk.hex(),
                    pubnonces=[pubnonces[k].hex() for k in pubkeys],
                    **session_fields,
                )
                assert verdict["ok"], f"the SDK library rejects the share of {pk.hex()}"

            # A share passed off as another cosigner's is refused on both sides.
            ours_pk = next(iter(ours))
            assert not musig2.partial_sig_verify_internal(
                psigs[node_pk], pubnonces[ours_pk], ours_pk, session
            )
            verdict = await peer.ask(
                "verify",
                psig=psigs[ours_pk].hex(),
                signer=node_pk.hex(),
                pubnonces=[pubnonces[k].hex() for k in pubkeys],
                **session_fields,
            )
            assert not verdict["ok"]

            # The same signature from both aggregators, valid for the final key.
            ordered = [psigs[pk] for pk in sorted_keys]
            sig = musig2.partial_sig_agg(ordered, session)
            theirs = await peer.ask("sig_agg", psigs=[p.hex() for p in ordered], **session_fields)
            assert bytes.fromhex(theirs["sig"]) == sig
            assert theirs["valid"]
            assert coincurve.PublicKeyXOnly(final.xonly()).verify(sig, msg)


async def test_tree_keys_agree_with_the_sdk_library_on_many_key_sets() -> None:
    with trio.fail_after(30):
        async with node_peer() as peer:
            for count in (2, 2, 3, 4, 5, 8):
                pubkeys = list(python_signers(count))
                root = secrets.token_bytes(32)
                agg = await peer.ask(
                    "aggregate", pubkeys=[pk.hex() for pk in pubkeys], root=root.hex()
                )
                final, _ = musig2.aggregate_tree_key(pubkeys, root)
                assert bytes.fromhex(agg["final"]) == final.plain()
                assert (
                    bytes.fromhex(agg["plain"]) == musig2.key_agg(musig2.key_sort(pubkeys)).plain()
                )
