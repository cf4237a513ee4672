"""`arkrelay sim chain` over HTTP: a real process on loopback, driven as a wallet and an
Ark server drive Esplora, with transactions signed by the test (embit), refused with
bitcoind's own reasons."""

from __future__ import annotations

import math

import httpx
import trio
from embit.transaction import Transaction

from arkrelay_lnd.chainsim import P2A_SCRIPT, address_of

from .conftest import ChainProcess, start_chain
from .txbuild import Coin, Key, build, csv_leaf, sign_keypath, sign_leaf

ALICE, BOB, CAROL = Key(1), Key(2), Key(3)
#: The fixture's --fee-floor, sat/vB.
FLOOR = 2


async def faucet(esplora: httpx.AsyncClient, script: bytes, amount: int) -> Coin:
    reply = await esplora.post(
        "/sim/faucet", json={"address": address_of(script), "amount": amount}
    )
    assert reply.status_code == 200, reply.text
    found = reply.json()
    return Coin(found["txid"], found["vout"], amount, script)


async def mine(esplora: httpx.AsyncClient, blocks: int = 1) -> int:
    reply = await esplora.post("/sim/mine", json={"blocks": blocks})
    assert reply.status_code == 200, reply.text
    return reply.json()["height"]


async def broadcast(esplora: httpx.AsyncClient, tx: Transaction) -> httpx.Response:
    return await esplora.post("/tx", content=tx.serialize().hex())


def refusal(reply: httpx.Response) -> str:
    """The reject reason in Esplora's 400 body (electrs relays bitcoind's RPC error)."""
    assert reply.status_code == 400, reply.text
    prefix = "sendrawtransaction RPC error: "
    assert reply.text.startswith(prefix), reply.text
    return httpx.Response(200, content=reply.text[len(prefix) :]).json()["message"]


def vsize(tx: Transaction) -> int:
    full = len(tx.serialize())
    witness = sum(len(i.witness.serialize()) for i in tx.vin)
    return math.ceil(((full - 2 - witness) * 3 + full) / 4)


async def test_a_signed_p2tr_spend_goes_from_mempool_into_a_block(
    esplora: httpx.AsyncClient,
) -> None:
    with trio.fail_after(30):
        coin = await faucet(esplora, ALICE.p2tr, 100_000)
        alice = address_of(ALICE.p2tr)
        listed = (await esplora.get(f"/address/{alice}/utxo")).json()
        assert [(u["txid"], u["vout"], u["value"]) for u in listed] == [(coin.txid, 0, 100_000)]
        assert listed[0]["status"]["confirmed"] is True
        height = int((await esplora.get("/blocks/tip/height")).text)
        assert listed[0]["status"]["block_height"] == height

        tx = build([coin], [(60_000, BOB.p2tr), (39_000, ALICE.p2tr)])
        sign_keypath(tx, [coin], 0, ALICE)
        reply = await broadcast(esplora, tx)
        assert reply.status_code == 200, reply.text
        assert reply.text == tx.txid().hex()

        status = (await esplora.get(f"/tx/{reply.text}/status")).json()
        assert status == {"confirmed": False}
        assert reply.text in (await esplora.get("/mempool/txids")).json()
        bob = (await esplora.get(f"/address/{address_of(BOB.p2tr)}/utxo")).json()
        assert [(u["value"], u["status"]["confirmed"]) for u in bob] == [(60_000, False)]
        mine_coins = (await esplora.get(f"/address/{alice}/utxo")).json()
        assert [u["value"] for u in mine_coins] == [39_000]  # the spent coin is gone
        shown = (await esplora.get(f"/tx/{reply.text}")).json()
        assert shown["fee"] == 1_000
        assert shown["vin"][0]["prevout"]["scriptpubkey_address"] == alice
        assert shown["vin"][0]["prevout"]["scriptpubkey_type"] == "v1_p2tr"
        assert shown["vout"][0]["scriptpubkey_address"] == address_of(BOB.p2tr)
        assert (await esplora.get(f"/tx/{reply.text}/hex")).text == tx.serialize().hex()
        spent = (await esplora.get(f"/tx/{coin.txid}/outspends")).json()
        assert spent[0]["spent"] is True and spent[0]["txid"] == reply.text

        assert await mine(esplora) == height + 1
        status = (await esplora.get(f"/tx/{reply.text}/status")).json()
        assert status["confirmed"] is True
        assert status["block_height"] == height + 1
        tip = (await esplora.get("/blocks")).json()[0]
        assert status["block_hash"] == tip["id"] == (await esplora.get("/blocks/tip/hash")).text
        assert tip["tx_count"] == 1 and tip["mediantime"] > 0
        history = (await esplora.get(f"/address/{alice}/txs")).json()
        assert [t["txid"] for t in history] == [reply.text, coin.txid]
        fees = (await esplora.get("/fee-estimates")).json()
        assert fees["1"] == FLOOR


async def test_double_spends_are_refused_with_bitcoinds_reasons(
    esplora: httpx.AsyncClient,
) -> None:
    with trio.fail_after(30):
        coin = await faucet(esplora, ALICE.p2tr, 50_000)
        first = build([coin], [(49_000, BOB.p2tr)])
        sign_keypath(first, [coin], 0, ALICE)
        assert (await broadcast(esplora, first)).status_code == 200
        # The same transaction again is no error, as for bitcoind.
        assert (await broadcast(esplora, first)).text == first.txid().hex()

        second = build([coin], [(48_000, CAROL.p2tr)])
        sign_keypath(second, [coin], 0, ALICE)
        assert refusal(await broadcast(esplora, second)) == "txn-mempool-conflict"
        await mine(esplora)
        assert refusal(await broadcast(esplora, second)) == "bad-txns-inputs-missingorspent"
        assert 'code":-25' in (await broadcast(esplora, second)).text
        # Outputs above inputs.
        other = await faucet(esplora, ALICE.p2tr, 10_000)
        greedy = build([other], [(10_001, BOB.p2tr)])
        sign_keypath(greedy, [other], 0, ALICE)
        assert refusal(await broadcast(esplora, greedy)) == (
            "bad-txns-in-belowout, value in (0.0001) < value out (0.00010001)"
        )


async def test_a_zero_fee_parent_is_accepted_only_with_a_p2a_child_paying_for_both(
    esplora: httpx.AsyncClient,
) -> None:
    with trio.fail_after(30):
        coin = await faucet(esplora, ALICE.p2tr, 100_000)
        fuel = await faucet(esplora, CAROL.p2tr, 20_000)
        # Ark's shape: version 3, no fee, a zero-value pay-to-anchor output.
        parent = build([coin], [(100_000, BOB.p2tr), (0, P2A_SCRIPT)], version=3)
        sign_keypath(parent, [coin], 0, ALICE)
        needed = FLOOR * vsize(parent)
        assert refusal(await broadcast(esplora, parent)) == f"min relay fee not met, 0 < {needed}"

        anchor = Coin(parent.txid().hex(), 1, 0, P2A_SCRIPT)
        cheap = build([anchor, fuel], [(19_950, CAROL.p2tr)], version=3)
        sign_keypath(cheap, [anchor, fuel], 1, CAROL)
        reply = await esplora.post(
            "/txs/package", json=[parent.serialize().hex(), cheap.serialize().hex()]
        )
        needed = FLOOR * (vsize(parent) + vsize(cheap))
        assert (reply.status_code, reply.text) == (
            400,
            'submitpackage RPC error: {"code":-26,"message":"min relay fee not met, '
            f'50 < {needed}"}}',
        )
        assert (await esplora.get("/mempool/txids")).json() == []

        child = build([anchor, fuel], [(18_000, CAROL.p2tr)], version=3)
        sign_keypath(child, [anchor, fuel], 1, CAROL)
        reply = await esplora.post(
            "/txs/package", json=[parent.serialize().hex(), child.serialize().hex()]
        )
        assert reply.status_code == 200, reply.text
        result = reply.json()
        assert result["package_msg"] == "success"
        assert {r["txid"] for r in result["tx-results"].values()} == {
            parent.txid().hex(),
            child.txid().hex(),
        }
        pool = set((await esplora.get("/mempool/txids")).json())
        assert pool == {parent.txid().hex(), child.txid().hex()}
        await mine(esplora)
        for tx in (parent, child):
            status = (await esplora.get(f"/tx/{tx.txid().hex()}/status")).json()
            assert status["confirmed"] is True


async def test_a_package_child_must_spend_the_ephemeral_anchor(
    esplora: httpx.AsyncClient,
) -> None:
    with trio.fail_after(30):
        coin = await faucet(esplora, ALICE.p2tr, 100_000)
        parent = build([coin], [(60_000, BOB.p2tr), (40_000, ALICE.p2tr), (0, P2A_SCRIPT)])
        parent.version = 3
        sign_keypath(parent, [coin], 0, ALICE)
        own = Coin(parent.txid().hex(), 1, 40_000, ALICE.p2tr)
        child = build([own], [(30_000, ALICE.p2tr)], version=3)
        sign_keypath(child, [own], 0, ALICE)
        reply = await esplora.post(
            "/txs/package", json=[parent.serialize().hex(), child.serialize().hex()]
        )
        assert reply.status_code == 400
        assert f"missing-ephemeral-spends, tx {child.txid().hex()} (wtxid=" in reply.text, (
            reply.text
        )


async def test_a_csv_locked_script_path_spend_waits_for_maturity(
    esplora: httpx.AsyncClient,
) -> None:
    with trio.fail_after(30):
        leaf = csv_leaf(3, BOB, internal=CAROL)
        coin = await faucet(esplora, leaf.output, 30_000)
        funded_at = int((await esplora.get("/blocks/tip/height")).text)

        def spend(sequence: int) -> Transaction:
            tx = build([coin], [(29_000, BOB.p2tr)], sequence=sequence)
            sign_leaf(tx, [coin], 0, BOB, leaf)
            return tx

        # Before three blocks have passed BIP 68 holds the spend (checked before scripts).
        assert refusal(await broadcast(esplora, spend(3))) == "non-BIP68-final"
        await mine(esplora, 1)
        assert refusal(await broadcast(esplora, spend(3))) == "non-BIP68-final"
        assert await mine(esplora, 1) == funded_at + 2
        # A sequence BIP 68 lets through but shorter than the script's 3 blocks.
        assert refusal(await broadcast(esplora, spend(2))) == (
            "mandatory-script-verify-flag-failed (Locktime requirement not satisfied)"
        )
        reply = await broadcast(esplora, spend(3))
        assert reply.status_code == 200, reply.text

        # A control block for another internal key does not commit to the output.
        other = csv_leaf(3, BOB, internal=ALICE)
        coin2 = await faucet(esplora, leaf.output, 30_000)
        await mine(esplora, 3)
        forged = build([coin2], [(29_000, BOB.p2tr)], sequence=3)
        sign_leaf(forged, [coin2], 0, BOB, other)
        assert refusal(await broadcast(esplora, forged)) == (
            "mandatory-script-verify-flag-failed (Witness program hash mismatch)"
        )


async def test_bad_signatures_are_refused(esplora: httpx.AsyncClient) -> None:
    with trio.fail_after(30):
        coin = await faucet(esplora, ALICE.p2tr, 40_000)
        tx = build([coin], [(39_000, BOB.p2tr)])
        sign_keypath(tx, [coin], 0, BOB)  # the wrong key
        assert refusal(await broadcast(esplora, tx)) == (
            "mandatory-script-verify-flag-failed (Invalid Schnorr signature)"
        )
        sign_keypath(tx, [coin], 0, ALICE)
        changed = Transaction.parse(tx.serialize())
        changed.vout[0].value = 38_000  # signed, then changed
        assert refusal(await broadcast(esplora, changed)) == (
            "mandatory-script-verify-flag-failed (Invalid Schnorr signature)"
        )
        # SIGHASH_ALL|ANYONECANPAY: a 65-byte signature with its hash type.
        explicit = build([coin], [(39_000, BOB.p2tr)])
        sign_keypath(explicit, [coin], 0, ALICE, hash_type=0x81)
        assert (await broadcast(esplora, explicit)).status_code == 200


async def test_locktime_and_dust_and_the_admin_calls(esplora: httpx.AsyncClient) -> None:
    with trio.fail_after(30):
        coin = await faucet(esplora, ALICE.p2tr, 40_000)
        height = int((await esplora.get("/blocks/tip/height")).text)
        late = build([coin], [(39_000, BOB.p2tr)], locktime=height + 3)
        sign_keypath(late, [coin], 0, ALICE)
        assert refusal(await broadcast(esplora, late)) == "non-final"
        await mine(esplora, 2)
        # nLockTime N is final from block N + 1 on (IsFinalTx: locktime < height).
        assert refusal(await broadcast(esplora, late)) == "non-final"
        await mine(esplora, 1)
        assert (await broadcast(esplora, late)).status_code == 200

        coin = await faucet(esplora, ALICE.p2tr, 40_000)
        dusty = build([coin], [(39_000, BOB.p2tr), (329, CAROL.p2tr)])
        sign_keypath(dusty, [coin], 0, ALICE)
        assert refusal(await broadcast(esplora, dusty)) == "dust, tx with dust output must be 0-fee"

        bad = await esplora.post("/sim/faucet", json={"address": "bc1qnotregtest", "amount": 5})
        assert bad.status_code == 400
        assert (await esplora.post("/sim/mine", json={"blocks": 0})).status_code == 400
        missing = await esplora.get("/tx/" + "ab" * 32)
        assert (missing.status_code, missing.text) == (404, "Transaction not found")


async def test_the_chain_survives_a_restart_with_its_state_file(tmp_path) -> None:
    state = tmp_path / "chain.json"
    chain: ChainProcess = await start_chain("--state", str(state))
    try:
        async with httpx.AsyncClient(base_url=chain.url, timeout=10) as client:
            coin = await faucet(client, ALICE.p2tr, 70_000)
            tx = build([coin], [(69_000, BOB.p2tr)])
            sign_keypath(tx, [coin], 0, ALICE)
            assert (await broadcast(client, tx)).status_code == 200
            height = int((await client.get("/blocks/tip/height")).text)
    finally:
        await chain.stop()
    chain = await start_chain("--state", str(state))
    try:
        async with httpx.AsyncClient(base_url=chain.url, timeout=10) as client:
            assert int((await client.get("/blocks/tip/height")).text) == height
            assert (await client.get("/mempool/txids")).json() == [tx.txid().hex()]
            bob = (await client.get(f"/address/{address_of(BOB.p2tr)}/utxo")).json()
            assert [u["value"] for u in bob] == [69_000]
    finally:
        await chain.stop()


async def test_malformed_requests_get_esplora_errors_not_crashes(
    esplora: httpx.AsyncClient,
) -> None:
    with trio.fail_after(30):
        assert (await esplora.post("/tx", content="zz")).text == "Invalid hex string"
        undecodable = await esplora.post("/tx", content="0200000000")
        assert refusal(undecodable) == (
            "TX decode failed. Make sure the tx has at least one input."
        )
        for body in ("{}", "[1]", "not json"):
            reply = await esplora.post("/txs/package", content=body)
            assert reply.status_code == 400, (body, reply.text)
        assert (await esplora.post("/sim/faucet", content="{}")).status_code == 400
        assert (await esplora.get("/address/bcrt1qqqqq/utxo")).status_code == 400
        assert (await esplora.get("/block-height/99999")).status_code == 404
        # An output key that is not a point: nothing can spend it, and the chain says so.
        coin = await faucet(esplora, b"\x51\x20" + b"\xff" * 32, 10_000)
        tx = build([coin], [(9_000, ALICE.p2tr)])
        tx.vin[0].witness.items = [b"\x01" * 64]
        assert refusal(await broadcast(esplora, tx)) == (
            "mandatory-script-verify-flag-failed (Invalid Schnorr signature)"
        )
