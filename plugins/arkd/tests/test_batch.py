"""arkd's batch protocol on the simulator, driven over gRPC by a Python wallet
(tests/batch_client.py): boarding, renewing VTXOs with forfeits and connectors, and how the
server answers a wallet that cheats."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput
from grpc_status import rpc_status

from arkrelay_arkd import arktx
from arkrelay_arkd._proto.ark.v1 import (
    indexer_pb2,
    indexer_pb2_grpc,
    service_pb2,
    service_pb2_grpc,
    types_pb2,
)
from arkrelay_arkd.intentproof import ProofInput, build_proof, sign_proof
from arkrelay_arkd.sim import ArkdSimulator
from arkrelay_arkd.sim.batch import BatchConfig
from arkrelay_arkd.sim.wallet import address_of
from arkrelay_arkd.tapscript import multisig_keys
from arkrelay_core.nostr import bip340

from .batch_client import Coin, EventReader, Tamper, Wallet, follow, settle
from .fakechain import FakeChain

WALLET_FUNDS = 5_000_000


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain()


@pytest.fixture
def sim(chain: FakeChain) -> Iterator[ArkdSimulator]:
    simulator = ArkdSimulator(chain=chain, batch_config=BatchConfig(session_duration=4.0))
    simulator.batches.fund_wallet(WALLET_FUNDS)
    simulator.start(0)
    yield simulator
    simulator.stop()


@pytest.fixture
def channel(sim: ArkdSimulator) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(sim.target) as ch:
        yield ch


def board(wallet: Wallet, chain: FakeChain, amount: int, *, confirmed: bool = True) -> Coin:
    tree = wallet.boarding_tree()
    txid, vout = chain.pay(tree.pk_script, amount, confirmed=confirmed)
    return Coin(txid, vout, amount, tree, boarding=True)


def vtxos_of(channel: grpc.Channel, wallet: Wallet) -> list[indexer_pb2.IndexerVtxo]:
    stub = indexer_pb2_grpc.IndexerServiceStub(channel)
    reply = stub.GetVtxos(
        indexer_pb2.GetVtxosRequest(scripts=[wallet.vtxo_tree().pk_script.hex()]), timeout=5
    )
    return list(reply.vtxos)


def arkd_error(exc: grpc.RpcError) -> types_pb2.ErrorDetails:
    status = rpc_status.from_call(exc)
    assert status is not None, exc
    details = types_pb2.ErrorDetails()
    status.details[0].Unpack(details)
    return details


def test_boarding_coins_become_a_vtxo_in_a_commitment_tx_on_the_chain(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, chain, 50_000)

    outcome = settle(wallet, [coin])

    assert outcome.failed == ""
    assert outcome.events[:2] == ["batch_started", "tree_tx"]
    assert outcome.events[-2:] == ["batch_finalization", "batch_finalized"]
    # The commitment tx is on the chain, spending the boarding coin through the
    # collaborative leaf with the owner's and the server's valid signatures.
    assert chain.broadcasts == [outcome.commitment_txid]
    tx = chain.txs[outcome.commitment_txid]
    boarding_in = next(i for i, vin in enumerate(tx.vin) if vin.txid.hex() == coin.txid)
    witness = tx.vin[boarding_in].witness.items
    script = witness[-2]
    assert script == coin.collaborative_leaf()
    assert multisig_keys(script) == [wallet.xonly, wallet.signer]
    unsigned = arktx.decode_psbt(outcome.commitment_tx)
    unsigned.inputs[boarding_in].taproot_scripts[witness[-1]] = script + b"\xc0"
    digest = arktx.tapscript_sighash(unsigned, boarding_in)
    assert bip340.schnorr_verify(wallet.signer, digest, witness[0])
    assert bip340.schnorr_verify(wallet.xonly, digest, witness[1])
    # The batch output pays the VTXO tree; the VTXO is a leaf of it, not the commitment.
    [vtxo] = vtxos_of(channel, wallet)
    assert vtxo.amount == 50_000
    assert list(vtxo.commitment_txids) == [outcome.commitment_txid]
    assert vtxo.outpoint.txid != outcome.commitment_txid
    assert not vtxo.is_preconfirmed and not vtxo.is_spent
    assert vtxo.expires_at >= int(time.time()) + BatchConfig().vtxo_tree_expiry - 60
    # The server paid the fee from its wallet and took its change back.
    fee = WALLET_FUNDS + 50_000 - sum(o.value for o in tx.vout)
    assert 0 < fee < 2_000


def test_a_vtxo_is_renewed_by_forfeiting_it_to_a_connector(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    first = settle(wallet, [board(wallet, chain, 40_000)])
    chain.mine()
    [old] = vtxos_of(channel, wallet)
    coin = Coin(old.outpoint.txid, old.outpoint.vout, old.amount, wallet.vtxo_tree(), False)

    second = settle(Wallet(channel, wallet.secret), [coin])

    assert second.failed == ""
    assert second.commitment_txid not in ("", first.commitment_txid)
    commitment = chain.txs[second.commitment_txid]
    # Output 1 is the connector output: the connector tree hangs from it.
    unsigned = arktx.decode_psbt(second.commitment_tx)
    assert unsigned.tx.txid() == commitment.txid()
    assert commitment.vout[1].value == sim.ledger.dust
    vtxos = {v.outpoint.txid: v for v in vtxos_of(channel, wallet)}
    spent = vtxos[old.outpoint.txid]
    assert spent.is_spent and spent.settled_by == second.commitment_txid
    assert spent.spent_by not in ("", second.commitment_txid)  # the forfeit tx
    [fresh] = [v for v in vtxos.values() if not v.is_spent]
    assert fresh.amount == 40_000
    assert list(fresh.commitment_txids) == [second.commitment_txid]


def test_an_unconfirmed_boarding_coin_is_refused(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, chain, 30_000, confirmed=False)
    with pytest.raises(grpc.RpcError) as refused:
        wallet.register([coin])
    details = arkd_error(refused.value)
    assert details.name == "INVALID_PSBT_INPUT"
    assert details.message == (f"failed to validate boarding input: tx {coin.txid} not confirmed")


def test_an_expired_intent_is_refused(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, chain, 30_000)
    with pytest.raises(grpc.RpcError) as refused:
        wallet.register([coin], Tamper(expire_at=int(time.time()) - 10))
    details = arkd_error(refused.value)
    assert (details.code, details.name) == (20, "INVALID_INTENT_TIMERANGE")
    assert details.message == "proof of ownership expired"


def test_a_coin_in_a_queued_intent_cannot_be_registered_twice(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, chain, 30_000)
    wallet.register([coin])
    with pytest.raises(grpc.RpcError) as refused:
        wallet.register([coin])
    details = arkd_error(refused.value)
    assert details.code == 0
    assert "duplicated input" in details.message


def test_a_bad_partial_signature_fails_the_batch_and_drops_the_cheater(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, chain, 30_000)

    outcome = settle(wallet, [coin], Tamper(bad_partial_signature=True))

    assert outcome.failed == "some musig2 signatures are invalid"
    assert chain.broadcasts == []
    assert vtxos_of(channel, wallet) == []
    # The cheater's intent was dropped, not queued again: the coin can be registered anew.
    honest = Wallet(channel, wallet.secret)
    assert settle(honest, [coin]).commitment_txid in chain.broadcasts


def test_a_forfeit_with_a_wrong_signature_fails_the_batch(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    settle(wallet, [board(wallet, chain, 40_000)])
    [old] = vtxos_of(channel, wallet)
    coin = Coin(old.outpoint.txid, old.outpoint.vout, old.amount, wallet.vtxo_tree(), False)

    outcome = settle(Wallet(channel, wallet.secret), [coin], Tamper(bad_forfeit_signature=True))

    assert outcome.failed == "invalid forfeit txs signature"
    assert len(chain.broadcasts) == 1
    [still] = vtxos_of(channel, wallet)
    assert not still.is_spent


def test_an_intent_not_confirmed_in_time_waits_for_the_next_batch(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    outcome = settle(wallet, [board(wallet, chain, 30_000)], Tamper(skip_confirm=True))
    assert outcome.failed == "not enough intent confirmations received"


def test_the_commitment_tx_pays_the_boarding_wallet_change_back(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    outcome = settle(wallet, [board(wallet, chain, 25_000)])
    tx: Transaction = chain.txs[outcome.commitment_txid]
    wallet_script = sim.batches.wallet.pk_script  # type: ignore[union-attr]
    assert address_of(wallet_script, "regtest") == wallet.info.forfeit_address
    assert [o.value for o in tx.vout if o.script_pubkey.data == wallet_script] != []


def test_a_cheater_fails_the_batch_for_everyone_but_only_its_intent_is_dropped(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    honest, cheater = Wallet(channel), Wallet(channel)
    honest_coin, cheater_coin = board(honest, chain, 30_000), board(cheater, chain, 20_000)
    reader = EventReader(honest.stub, [honest.cosigner.hex(), honest_coin.outpoint])
    try:
        assert reader.next().WhichOneof("event") == "stream_started"
        intent_id = honest.register([honest_coin])
        cheating = threading.Thread(
            target=settle, args=(cheater, [cheater_coin], Tamper(bad_partial_signature=True))
        )
        cheating.start()

        first = follow(honest, [honest_coin], Tamper(), reader, intent_id)
        cheating.join(30)
        second = follow(honest, [honest_coin], Tamper(), reader, intent_id)
    finally:
        reader.close()

    assert first.failed == "some musig2 signatures are invalid"
    assert second.failed == "" and chain.broadcasts == [second.commitment_txid]
    commitment = chain.txs[second.commitment_txid]
    assert cheater_coin.txid not in {vin.txid.hex() for vin in commitment.vin}
    [vtxo] = vtxos_of(channel, honest)
    assert vtxo.amount == 30_000
    assert vtxos_of(channel, cheater) == []


def test_a_deleted_intent_frees_its_coins(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, chain, 30_000)
    wallet.register([coin])
    message = '{"type":"delete","expire_at":0}'
    proof = build_proof(
        message,
        [ProofInput(coin.txid, coin.vout, coin.amount, coin.tree, coin.collaborative_leaf())],
    )
    sign_proof(proof, message, wallet.secret)
    intent = types_pb2.Intent(proof=proof.to_string(), message=message)

    wallet.stub.DeleteIntent(service_pb2.DeleteIntentRequest(intent=intent), timeout=5)

    with pytest.raises(grpc.RpcError) as refused:
        wallet.stub.DeleteIntent(service_pb2.DeleteIntentRequest(intent=intent), timeout=5)
    details = arkd_error(refused.value)
    assert (details.name, details.message) == (
        "INVALID_INTENT_PROOF",
        "no matching intents found for intent proof",
    )
    assert settle(wallet, [coin]).commitment_txid in chain.broadcasts


def test_tree_events_reach_only_the_listeners_of_their_topics(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    bystander = EventReader(wallet.stub, ["some-other-topic"])
    try:
        assert bystander.next().WhichOneof("event") == "stream_started"
        outcome = settle(wallet, [board(wallet, chain, 30_000)])
        seen = []
        while (kind := bystander.next().WhichOneof("event")) != "batch_finalized":
            seen.append(kind)
    finally:
        bystander.close()
    assert outcome.failed == ""
    assert seen == [
        "batch_started",
        "tree_signing_started",
        "tree_nonces_aggregated",
        "batch_finalization",
    ]


def test_topics_of_a_stream_can_be_changed(sim: ArkdSimulator, channel: grpc.Channel) -> None:
    stub = Wallet(channel).stub
    reader = EventReader(stub, ["A"])
    try:
        stream_id = reader.next().stream_started.id
        added = stub.UpdateStreamTopics(
            service_pb2.UpdateStreamTopicsRequest(
                stream_id=stream_id, modify=service_pb2.ModifyTopics(add_topics=["B"])
            ),
            timeout=5,
        )
        assert list(added.all_topics) == ["a", "b"]
        replaced = stub.UpdateStreamTopics(
            service_pb2.UpdateStreamTopicsRequest(
                stream_id=stream_id, overwrite=service_pb2.OverwriteTopics(topics=["c"])
            ),
            timeout=5,
        )
        assert list(replaced.all_topics) == ["c"]
        with pytest.raises(grpc.RpcError) as unknown:
            stub.UpdateStreamTopics(
                service_pb2.UpdateStreamTopicsRequest(
                    stream_id="nope", overwrite=service_pb2.OverwriteTopics(topics=["c"])
                ),
                timeout=5,
            )
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (
            Tamper(skip_nonces=True),
            "musig2 signing session timed out (nonce collection), collected 0/1 nonces",
        ),
        (
            Tamper(skip_signatures=True),
            "musig2 signing session timed out (signatures collection), collected 0/1 signatures",
        ),
        (Tamper(skip_finalization=True), "missing boarding inputs signatures"),
    ],
)
def test_a_wallet_that_stops_answering_fails_the_batch_and_loses_its_intent(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel, tamper: Tamper, reason: str
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, chain, 30_000)

    outcome = settle(wallet, [coin], tamper)

    assert outcome.failed == reason
    assert chain.broadcasts == []
    # Dropped, not queued again: the same coin registers anew at once.
    wallet.register([coin])


def test_a_vtxo_leaves_the_batch_on_chain_in_a_collaborative_exit(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    settle(wallet, [board(wallet, chain, 40_000)])
    [old] = vtxos_of(channel, wallet)
    coin = Coin(old.outpoint.txid, old.outpoint.vout, old.amount, wallet.vtxo_tree(), False)
    destination = b"\x51\x20" + bytes(range(32))

    outcome = settle(Wallet(channel, wallet.secret), [coin], Tamper(offboard_to=destination))

    assert outcome.failed == ""
    assert "tree_signing_started" not in outcome.events  # no VTXO tree to sign
    tx = chain.txs[outcome.commitment_txid]
    # arkd: with no batch output the first on-chain output takes slot 0, the connector 1.
    assert (tx.vout[0].script_pubkey.data, tx.vout[0].value) == (destination, 40_000)
    assert tx.vout[1].value == sim.ledger.dust
    [spent] = vtxos_of(channel, wallet)
    assert spent.is_spent and spent.settled_by == outcome.commitment_txid


def test_boarding_coins_cannot_leave_on_chain_in_the_same_intent(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, chain, 40_000)
    with pytest.raises(grpc.RpcError) as refused:
        wallet.register([coin], Tamper(offboard_to=b"\x51\x20" + bytes(32)))
    details = arkd_error(refused.value)
    assert (details.name, details.message) == (
        "INVALID_INTENT_PROOF",
        "cannot include onchain inputs and outputs",
    )


def test_an_intent_whose_boarding_coin_was_spent_meanwhile_hears_it(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    coin = board(wallet, chain, 30_000)

    def spend_it(_intent_id: str) -> None:
        spender = Transaction(
            version=2,
            vin=[TransactionInput(bytes.fromhex(coin.txid), coin.vout)],
            vout=[TransactionOutput(29_000, Script(b"\x51\x20" + bytes(32)))],
        )
        chain.broadcast(spender.serialize().hex())

    outcome = settle(wallet, [coin], on_registered=spend_it)

    assert outcome.failed == f"boarding input already spent: {coin.outpoint}"
    assert outcome.events == ["batch_failed"]


def test_a_vtxo_registered_for_a_batch_cannot_be_spent_offchain(
    sim: ArkdSimulator, chain: FakeChain, channel: grpc.Channel
) -> None:
    wallet = Wallet(channel)
    settle(wallet, [board(wallet, chain, 40_000)])
    [vtxo] = vtxos_of(channel, wallet)
    tree = wallet.vtxo_tree()
    coin = Coin(vtxo.outpoint.txid, vtxo.outpoint.vout, vtxo.amount, tree, False)
    wallet.register([coin])
    spend = arktx.VtxoSpend(coin.txid, coin.vout, coin.amount, tree, coin.collaborative_leaf())
    txs = arktx.build_offchain_txs(
        [spend], [(tree.pk_script, coin.amount)], bytes.fromhex(wallet.info.checkpoint_tapscript)
    )
    arktx.sign_input(txs.ark_tx, 0, wallet.secret)

    with pytest.raises(grpc.RpcError) as refused:
        wallet.stub.SubmitTx(
            service_pb2.SubmitTxRequest(
                signed_ark_tx=txs.ark_tx.to_string(),
                checkpoint_txs=[c.to_string() for c in txs.checkpoints],
            ),
            timeout=5,
        )
    details = arkd_error(refused.value)
    assert (details.code, details.name) == (4, "VTXO_ALREADY_REGISTERED")
    assert details.message == f"{coin.outpoint} already registered"


def test_get_info_names_the_forfeit_address_with_or_without_a_chain(
    sim: ArkdSimulator, channel: grpc.Channel
) -> None:
    # arkd always has its wallet, and @arkade-os/sdk's Wallet.create refuses a server whose
    # GetInfo has no forfeit address: the simulator without a chain must still name it.
    with_chain = service_pb2_grpc.ArkServiceStub(channel).GetInfo(service_pb2.GetInfoRequest())
    alone = ArkdSimulator(sim.ledger)
    alone.start(0)
    try:
        with grpc.insecure_channel(alone.target) as ch:
            info = service_pb2_grpc.ArkServiceStub(ch).GetInfo(service_pb2.GetInfoRequest())
    finally:
        alone.stop()
    assert info.forfeit_address == with_chain.forfeit_address
    assert info.forfeit_address.startswith("bcrt1p")
