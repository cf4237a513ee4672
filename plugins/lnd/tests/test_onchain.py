"""The on-chain side: the simulated chain's fee floor and CPFP packages, the wallet's
children and replacements, the WalletKit servicers' refusals over real gRPC, and the
client's commitment calls (find, bump, rebroadcast) including across a node restart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import trio

from arkrelay_core.errors import BackendError
from arkrelay_core.grpcutil import open_channel
from arkrelay_lnd._proto import lightning_pb2, lightning_pb2_grpc
from arkrelay_lnd._proto.walletrpc import walletkit_pb2, walletkit_pb2_grpc
from arkrelay_lnd.client import LndBackend
from arkrelay_lnd.sim import LndSimulator
from arkrelay_lnd.sim.chain import NOT_MINE, Chain, Wallet, WalletError, vsize

from .conftest import Connect

OP_RETURN = bytes([0x6A, 32]) + bytes(32)


def _wallet(chain: Chain, funds: int = 1_000_000) -> Wallet:
    return Wallet(chain, os.urandom(32), funds=funds)


def _change(wallet: Wallet, txid: str) -> tuple[str, int]:
    outs = wallet.txs[txid].tx.vout
    return txid, next(i for i, o in enumerate(outs) if wallet.owns(o.script_pubkey.data))


# ---------------------------------------------------------------------------------- chain


def test_a_send_pays_its_rate_on_its_real_size() -> None:
    wallet = _wallet(Chain())
    sent = wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=3)
    assert sent.vsize == vsize(sent.tx)
    # One p2wpkh input, a 32-byte OP_RETURN and a p2wpkh change: 152.5 vB, rounded up.
    assert sent.vsize == 153
    assert sent.fee == 3 * 153


def test_blocks_leave_out_packages_below_the_floor_until_a_child_pays() -> None:
    chain = Chain()
    chain.fee_floor = 5
    wallet = _wallet(chain)
    cheap = wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=2)
    rich = wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=5)
    chain.mine()
    assert wallet.confirmations(cheap.txid) == 0
    assert wallet.confirmations(rich.txid) == 1

    # A child at 5 sat/vB is not enough for both: (2*153 + 5*110) / 263 < 5.
    child, replaced = wallet.bump_fee(_change(wallet, cheap.txid), sat_per_vbyte=5)
    assert not replaced and child.vsize == 110
    assert chain.package_rate(child.txid) < 5
    chain.mine()
    assert wallet.confirmations(cheap.txid) == wallet.confirmations(child.txid) == 0

    bigger, replaced = wallet.bump_fee(_change(wallet, cheap.txid), sat_per_vbyte=10)
    assert replaced and child.txid not in wallet.txs
    assert chain.package_rate(bigger.txid) >= 5
    chain.mine()
    assert wallet.confirmations(cheap.txid) == wallet.confirmations(bigger.txid) == 1


def test_a_parent_paying_the_floor_confirms_without_its_child() -> None:
    chain = Chain()
    wallet = _wallet(chain)
    parent = wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=6)
    child, _ = wallet.bump_fee(_change(wallet, parent.txid), sat_per_vbyte=1)
    chain.fee_floor = 5
    chain.mine()
    assert wallet.confirmations(parent.txid) == 1
    assert wallet.confirmations(child.txid) == 0


def test_faucet_coins_confirm_whatever_the_floor() -> None:
    chain = Chain()
    chain.fee_floor = 50
    wallet = _wallet(chain, funds=0)
    coin = wallet.receive(10_000, confirmed=False)
    chain.mine()
    assert wallet.confirmations(coin.txid) == 1


def test_a_replacement_gives_back_the_replaced_childs_coins() -> None:
    chain = Chain()
    wallet = _wallet(chain)
    parent = wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=1)
    first, _ = wallet.bump_fee(_change(wallet, parent.txid), sat_per_vbyte=4)
    total = sum(wallet.balance())
    second, replaced = wallet.bump_fee(_change(wallet, parent.txid), sat_per_vbyte=8)
    assert replaced and second.fee > first.fee
    assert sum(wallet.balance()) == total + first.fee - second.fee
    # Asking for less than the child already pays keeps it.
    kept, replaced = wallet.bump_fee(_change(wallet, parent.txid), sat_per_vbyte=2)
    assert replaced and kept is second


def test_the_wallet_refuses_outputs_it_does_not_control_and_confirmed_ones() -> None:
    chain = Chain()
    wallet, other = _wallet(chain), _wallet(chain)
    sent = wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=2)
    with pytest.raises(WalletError, match=NOT_MINE):
        wallet.bump_fee((sent.txid, 0), sat_per_vbyte=5)  # the OP_RETURN
    with pytest.raises(WalletError, match=NOT_MINE):
        other.bump_fee(_change(wallet, sent.txid), sat_per_vbyte=5)
    chain.mine()
    with pytest.raises(WalletError, match="confirmed"):
        wallet.bump_fee(_change(wallet, sent.txid), sat_per_vbyte=5)
    with pytest.raises(WalletError, match="already spent"):
        other.publish(sent.raw)
    assert wallet.publish(sent.raw, "again") is wallet.txs[sent.txid]


# ---------------------------------------------------------------------------------- gRPC


@pytest.fixture
def stubs(sim: LndSimulator) -> Iterator[tuple[Any, Any, tuple[tuple[str, str], ...]]]:
    channel = open_channel(sim.target("gateway"), tls=True, root_certificate=sim.tls.cert_pem)
    metadata = (("macaroon", sim.node("gateway").macaroon_hex),)
    yield (
        lightning_pb2_grpc.LightningStub(channel),
        walletkit_pb2_grpc.WalletKitStub(channel),
        metadata,
    )
    channel.close()


def _refusal(call: Any, request: Any, metadata: Any) -> str:
    with pytest.raises(grpc.RpcError) as refused:
        call(request, metadata=metadata, timeout=10)
    assert refused.value.code() is grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
    return refused.value.details()  # type: ignore[attr-defined,no-any-return]


def test_bump_fee_and_publish_refuse_as_lnd_does(sim: LndSimulator, stubs: Any) -> None:
    _, wallet, metadata = stubs
    node = sim.node("gateway")
    sent = node.wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=2)
    txid, index = _change(node.wallet, sent.txid)

    def bump(**fields: Any) -> Any:
        return walletkit_pb2.BumpFeeRequest(**fields)

    def at(txid: str, index: int) -> lightning_pb2.OutPoint:
        return lightning_pb2.OutPoint(txid_str=txid, output_index=index)

    unknown = bump(outpoint=at(os.urandom(32).hex(), 0), sat_per_vbyte=5)
    assert _refusal(wallet.BumpFee, unknown, metadata) == NOT_MINE
    assert "empty outpoint" in _refusal(wallet.BumpFee, bump(sat_per_vbyte=5), metadata)
    both = bump(outpoint=at(txid, index), sat_per_vbyte=5, sat_per_byte=5)
    assert "not both" in _refusal(wallet.BumpFee, both, metadata)
    # txid_bytes are in lnd's internal (reversed) order.
    reversed_id = lightning_pb2.OutPoint(txid_bytes=bytes.fromhex(txid)[::-1], output_index=index)
    done = wallet.BumpFee(
        bump(outpoint=reversed_id, sat_per_vbyte=5), metadata=metadata, timeout=10
    )
    assert done.status == "Successfully registered CPFP-tx with the sweeper"
    again = wallet.BumpFee(
        bump(outpoint=at(txid, index), sat_per_vbyte=9), metadata=metadata, timeout=10
    )
    assert again.status == "Successfully registered rbf-tx with sweeper"

    published = wallet.PublishTransaction(
        walletkit_pb2.Transaction(tx_hex=sent.raw), metadata=metadata, timeout=10
    )
    assert published.publish_error == ""
    foreign = sim.node("outside").wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=2)
    refused = _refusal(
        wallet.PublishTransaction, walletkit_pb2.Transaction(tx_hex=foreign.raw), metadata
    )
    assert refused == "transaction rejected: output already spent"
    garbage = walletkit_pb2.Transaction(tx_hex=b"\x01\x02")
    assert "deserialize" in _refusal(wallet.PublishTransaction, garbage, metadata)

    sim.network.mine()
    confirmed = bump(outpoint=at(txid, index), sat_per_vbyte=20)
    assert _refusal(wallet.BumpFee, confirmed, metadata) == (
        "unable to bump fee of a confirmed transaction"
    )


def test_get_transactions_lists_every_wallet_tx_with_its_outputs(
    sim: LndSimulator, stubs: Any
) -> None:
    lightning, _, metadata = stubs
    wallet = sim.node("gateway").wallet
    sim.network.chain.fee_floor = 10
    parent = wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=2, label="commitment")
    child, _ = wallet.bump_fee(_change(wallet, parent.txid), sat_per_vbyte=40)
    sim.network.mine()

    listed = lightning.GetTransactions(
        lightning_pb2.GetTransactionsRequest(end_height=-1), metadata=metadata, timeout=10
    ).transactions
    by_id = {tx.tx_hash: tx for tx in listed}
    for record in (parent, child):
        tx = by_id[record.txid]
        assert tx.raw_tx_hex == record.raw.hex()
        assert (tx.num_confirmations, tx.block_height) == (1, sim.network.chain.height)
        assert tx.block_hash == sim.network.chain.tip_hash()
        assert tx.total_fees == record.fee
    sent = by_id[parent.txid]
    assert sent.label == "commitment" and by_id[child.txid].label == "0:sweep"
    assert sent.amount == -parent.fee
    nulldata, change = sent.output_details
    assert (nulldata.output_type, nulldata.is_our_address, nulldata.amount) == (6, False, 0)
    assert (change.output_type, change.is_our_address) == (2, True)
    assert change.address.startswith("bcrt1q")
    spends = by_id[child.txid].previous_outpoints
    assert [(p.outpoint, p.is_our_output) for p in spends] == [
        (f"{parent.txid}:{change.output_index}", True)
    ]


# ---------------------------------------------------------------------------------- client


async def test_bump_fee_lifts_the_package_to_the_rate_asked(
    sim: LndSimulator, gateway: LndBackend
) -> None:
    chain = sim.network.chain
    chain.fee_floor = 7
    tx = await gateway.send_op_return(b"commit" + os.urandom(26), sat_per_vbyte=1, label="c1")
    assert sim.node("gateway").wallet.txs[tx.txid].label == "c1"
    await gateway.bump_fee(tx.txid, sat_per_vbyte=7)
    children = [r for r in sim.node("gateway").wallet.txs.values() if r.label == "0:sweep"]
    assert len(children) == 1
    # BumpFee takes whole sat/vB for the child: at most 1 sat/vB of it over.
    assert 7 <= chain.package_rate(children[0].txid) < 7 + 110 / (153 + 110)
    sim.network.mine()
    assert (await gateway.tx_confirmations(tx.txid)).confirmations == 1


async def test_bump_fee_of_a_tx_already_paying_the_rate_changes_nothing(
    sim: LndSimulator, gateway: LndBackend
) -> None:
    wallet = sim.node("gateway").wallet
    tx = await gateway.send_op_return(b"rich" + os.urandom(28), sat_per_vbyte=8)
    before = set(wallet.txs)
    await gateway.bump_fee(tx.txid, sat_per_vbyte=8)
    assert set(wallet.txs) == before


async def test_bump_fee_refuses_a_tx_with_no_output_of_ours(
    sim: LndSimulator, gateway: LndBackend
) -> None:
    wallet = sim.node("gateway").wallet
    coin = next(u for u in wallet.utxos if u.height)
    # Paying all of a coin but 300 sats to another node: the change would be dust, so
    # it goes to the fee and the wallet keeps no output of this tx.
    payee = sim.node("outside").wallet.script
    sent = wallet.send_outputs([(coin.value - 300, payee)], sat_per_vbyte=2)
    assert sent.fee == 300 and len(sent.tx.vout) == 1
    with pytest.raises(BackendError, match="no output"):
        await gateway.bump_fee(sent.txid, sat_per_vbyte=5)
    with pytest.raises(BackendError, match="no transaction"):
        await gateway.bump_fee(os.urandom(32).hex(), sat_per_vbyte=5)


async def test_rebroadcast_refuses_a_transaction_lnd_cannot_publish(
    sim: LndSimulator, gateway: LndBackend
) -> None:
    foreign = sim.node("outside").wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=2)
    with pytest.raises(BackendError, match="already spent"):
        await gateway.rebroadcast(foreign.raw.hex())
    with pytest.raises(ValueError):
        await gateway.rebroadcast("0102")


async def test_rebroadcast_of_a_mined_tx_lnd_calls_a_double_spend_succeeds(
    sim: LndSimulator, gateway: LndBackend
) -> None:
    wallet = sim.node("gateway").wallet
    tx = await gateway.send_op_return(b"mined" + os.urandom(27), sat_per_vbyte=2)
    sim.network.mine()
    await gateway.rebroadcast(tx.raw_hex)  # its change is unspent: "already known"
    change = next(u for u in wallet.utxos if u.txid == tx.txid)
    wallet.utxos.remove(change)
    wallet.utxos.insert(0, change)  # the next send spends it
    wallet.send_outputs([(0, OP_RETURN)], sat_per_vbyte=2)
    assert not sim.network.chain.has_unspent(tx.txid)
    with pytest.raises(WalletError, match="already spent"):
        wallet.publish(bytes.fromhex(tx.raw_hex))
    await gateway.rebroadcast(tx.raw_hex)  # lnd refuses, the wallet has it mined: fine


async def test_the_wallet_survives_a_node_restart(sim: LndSimulator, connect: Connect) -> None:
    gateway = await connect(retries=8)
    sim.network.chain.fee_floor = 4
    data = b"restart" + os.urandom(25)
    tx = await gateway.send_op_return(data, sat_per_vbyte=2)
    balance = await gateway.onchain_balance()
    sim.stop("gateway")
    sim.start("gateway")
    with trio.fail_after(20):
        found = await gateway.find_op_return(data)
    assert found is not None and found.txid == tx.txid
    assert await gateway.onchain_balance() == balance
    await gateway.rebroadcast(tx.raw_hex)
    await gateway.bump_fee(tx.txid, sat_per_vbyte=4)
    sim.network.mine()
    assert (await gateway.tx_confirmations(tx.txid)).confirmations == 1
