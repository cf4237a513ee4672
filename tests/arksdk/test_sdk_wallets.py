"""Ark Labs' own wallet against the simulators: two @arkade-os/sdk wallets board, settle
and pay each other through the arkd simulator and the simulated chain, and exchange
payments with the Python reference wallet, which talks to the gateway over Nostr.

Every process is real and on loopback: `arkrelay sim chain` (Esplora), `arkrelay sim
arkd --esplora` (arkd's gRPC for the gateway, its REST interface for the SDK), a
nostr-relay, the gateway (in the test's trio loop, its arkd backend pointed at the
simulator) and node running scenario.mjs. Balances are then read on every side: the
SDK's getBalance, the gateway's sync_state, and the simulator's own indexer.

Whatever the SDK refuses is a simulator bug until shown otherwise (docs/simulators.md,
"What @arkade-os/sdk found").
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from arkrelay_arkd import address
from arkrelay_arkd.client import SIM_STATE_FILE
from arkrelay_arkd.sim.journal import read_journal
from arkrelay_wallet import Wallet
from arkrelay_wallet.arkserver import default_script, fetch_vtxos

from arkrelay_core.protocol import Kind
from plugins.nostr.tests.relay_process import NostrRelay, free_port
from tests.ceremony.harness import running_gateway
from tests.ceremony.processes import ARKRELAY, Process

from .judge import judge_state_files, need_sdk
from .sdkdriver import SdkWallets

pytestmark = pytest.mark.node

FEE = 10  # the gateway's default transfer fee (get_info fees.transfer)
BOARDED = 100_000
BOB_BOARDED = 40_000
A_TO_B = 20_000
A_TO_REF = 30_000
REF_TO_B = 5_000
#: Seconds per batch session: short, so settling does not wait (arkd's default is 30).
SESSION = "2"


@pytest.fixture(autouse=True)
def _needs_sdk() -> None:
    need_sdk()


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = Process([str(ARKRELAY), "sim", "chain", "--port", str(port)], tmp_path / "chain.log")
    process.start("chain simulator ready on")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()


@pytest.fixture
def arkd(tmp_path: Path, chain: str) -> Iterator[tuple[str, str]]:
    """The arkd simulator on the chain: (gRPC target, REST URL)."""
    port, rest = free_port(), free_port()
    process = Process(
        [
            str(ARKRELAY), "sim", "arkd", "--port", str(port), "--rest-port", str(rest),
            "--esplora", chain, "--session-duration", SESSION,
            "--state", str(tmp_path / SIM_STATE_FILE),
            # The gateway's 10-sat fee output is below dust, arkd's default minimum.
            "--vtxo-min-amount", "1",
        ],
        tmp_path / "arkd.log",
    )  # fmt: skip
    process.start("arkd simulator ready on")
    try:
        yield f"127.0.0.1:{port}", f"http://127.0.0.1:{rest}"
    finally:
        process.kill()


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[NostrRelay]:
    process = NostrRelay(tmp_path / "relay")
    process.start()
    yield process
    process.stop()


async def _spendable(server_url: str, script: str) -> int:
    return sum(v.amount for v in await fetch_vtxos(server_url, [script]))


async def test_sdk_wallets_and_a_nostr_wallet_pay_each_other(
    tmp_path: Path, chain: str, arkd: tuple[str, str], relay: NostrRelay
) -> None:
    target, rest_url = arkd
    ark_settings = f'target = "{target}"\npublic_url = "{rest_url}"\n'
    with trio.fail_after(300):
        async with (
            running_gateway(tmp_path / "gw", relay.url, ark_settings=ark_settings) as gateway,
            Wallet(relay.url, gateway.identity.pubkey, secret=secrets.token_bytes(32)) as ref,
            SdkWallets(rest_url, chain, tmp_path / "sdk.log") as sdk,
        ):
            alice = await sdk.call("create", name="alice", secret=secrets.token_hex(32))
            bob = await sdk.call("create", name="bob", secret=secrets.token_hex(32))

            # Board: coins to alice's boarding address, a block, then settle into a VTXO.
            await sdk.call("faucet", address=alice["boarding_address"], amount=BOARDED)
            await sdk.call("mine", blocks=1)
            await sdk.call("settle", name="alice", timeout=120)
            await sdk.call("wait_balance", name="alice", field="settled", value=BOARDED)

            # Offchain, SDK to SDK; bob boards too, and one settle renews what he got
            # (a forfeit on a connector) and boards his coins (a boarding input).
            await sdk.call("send", name="alice", address=bob["address"], amount=A_TO_B)
            await sdk.call("wait_balance", name="bob", field="preconfirmed", value=A_TO_B)
            await sdk.call("faucet", address=bob["boarding_address"], amount=BOB_BOARDED)
            await sdk.call("mine", blocks=1)
            await sdk.call("settle", name="bob", timeout=120)
            await sdk.call("wait_balance", name="bob", field="settled", value=A_TO_B + BOB_BOARDED)

            # The reference wallet's own Ark address, as the SDK reads it: the gateway's
            # Ark server key and the key of the wallet's default VTXO script.
            terms = await ref.load_terms()
            ref_address = await ref.ark_address()
            decoded = await sdk.call("decode_address", address=ref_address)
            assert decoded["server_pubkey"] == terms.signer_pubkey
            ref_script = default_script(ref.pubkey, terms)
            assert "5120" + decoded["vtxo_taproot_key"] == ref_script

            # SDK to the Nostr wallet: the gateway sees the VTXO as the wallet's.
            await sdk.call("send", name="alice", address=ref_address, amount=A_TO_REF)
            state = await _wait_sync_balance(ref, A_TO_REF)
            assert [v["amount"] for v in state["vtxos"] if v["status"] == "spendable"] == [A_TO_REF]

            # The Nostr wallet pays bob back through the gateway's transfer ceremony, to
            # bob's key, which is his Ark address's owner.
            intent = ref.intent(
                "ark:transfer",
                {
                    "asset_id": "gBTC",
                    "amount": REF_TO_B,
                    "recipient_pubkey": bob["pubkey"],
                    "fee": {"asset_id": "gBTC", "amount": FEE},
                },
            )
            outcome = await ref.run_ceremony(intent)
            assert outcome.event.kind == Kind.CONFIRMATION, outcome.content
            bob_script = "5120" + address.decode(bob["address"]).vtxo_key.hex()
            paid = [c for c in outcome.content["created"] if c["owner"] == bob["pubkey"]]
            assert [c["amount"] for c in paid] == [REF_TO_B]
            await sdk.call(
                "wait_balance", name="bob", field="available", value=A_TO_B + BOB_BOARDED + REF_TO_B
            )

            # Balances agree on every side.
            alice_balance = await sdk.call("balance", name="alice")
            bob_balance = await sdk.call("balance", name="bob")
            assert alice_balance["available"] == BOARDED - A_TO_B - A_TO_REF
            assert bob_balance["settled"] == A_TO_B + BOB_BOARDED
            assert bob_balance["preconfirmed"] == REF_TO_B
            ref_left = A_TO_REF - REF_TO_B - FEE
            check = await ref.check_with_server()
            assert check.problems == []
            assert list(check.state["balances"].values()) == [ref_left]
            spendable = [v for v in check.state["vtxos"] if v["status"] == "spendable"]
            assert {v["ticker"] for v in spendable} == {"gBTC"}
            assert check.server_balance == ref_left
            alice_script = "5120" + address.decode(alice["address"]).vtxo_key.hex()
            assert await _spendable(rest_url, alice_script) == alice_balance["available"]
            assert await _spendable(rest_url, bob_script) == A_TO_B + BOB_BOARDED + REF_TO_B
            assert await _spendable(rest_url, ref_script) == ref_left

    # Every ark tx of the scenario, the SDK's own and the gateway's, as the SDK builds it.
    journal = read_journal(tmp_path / SIM_STATE_FILE)
    assert len(journal) == 3  # alice -> bob, alice -> ref (SDK), ref -> bob (gateway)
    assert journal[2].ark_txid == outcome.content["ark_txid"]
    assert judge_state_files(tmp_path) == 3


async def _wait_sync_balance(ref: Wallet, amount: int, within: float = 45) -> dict:
    """The gateway's sync_state once it lists ``amount`` sats spendable for ``ref``."""
    deadline = trio.current_time() + within
    while True:
        state = await ref.call("sync_state")
        if sum(state["balances"].values()) == amount:
            return state
        assert trio.current_time() < deadline, f"sync_state never showed {amount}: {state}"
        await trio.sleep(0.2)
