"""Batches against the real chain process (`arkrelay sim chain`) over Esplora: the chain's
mempool checks the commitment tx's fee and every signature (key path for the server
wallet, script path for boarding coins) before it takes it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from embit.script import address_to_scriptpubkey

from arkrelay_arkd.sim import ArkdSimulator
from arkrelay_arkd.sim.batch import BatchConfig
from arkrelay_arkd.sim.esplora import EsploraChain
from arkrelay_arkd.sim.wallet import address_of

from .batch_client import Coin, Wallet, settle
from .test_batch import vtxos_of

ARKRELAY = str(Path(sys.executable).parent / "arkrelay")
READY = re.compile(r"chain simulator ready on (http://\S+)")


@pytest.fixture
def esplora() -> Iterator[EsploraChain]:
    process = subprocess.Popen(
        [ARKRELAY, "sim", "chain", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.append(raw.decode(errors="replace"))
            if READY.search(lines[-1]):
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert found.wait(60), "".join(lines)
        url = next(m[1] for line in lines if (m := READY.search(line)))
        chain = EsploraChain(url)
        yield chain
        chain.close()
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(5)


@pytest.fixture
def sim(esplora: EsploraChain) -> Iterator[ArkdSimulator]:
    simulator = ArkdSimulator(chain=esplora, batch_config=BatchConfig(session_duration=4.0))
    simulator.batches.fund_wallet(2_000_000)
    simulator.start(0)
    yield simulator
    simulator.stop()


def test_board_then_renew_on_the_real_chain(sim: ArkdSimulator, esplora: EsploraChain) -> None:
    with grpc.insecure_channel(sim.target) as channel:
        wallet = Wallet(channel)
        tree = wallet.boarding_tree()
        txid, vout = esplora.faucet(address_of(tree.pk_script, "regtest"), 60_000)
        esplora.mine(1)

        boarded = settle(wallet, [Coin(txid, vout, 60_000, tree, boarding=True)])

        assert boarded.failed == ""
        status = esplora.tx_status(boarded.commitment_txid)
        assert status is not None  # the chain's mempool accepted it, signatures and fee
        assert esplora.is_spent(txid, vout)
        esplora.mine(1)
        assert esplora.tx_status(boarded.commitment_txid).confirmed
        [vtxo] = vtxos_of(channel, wallet)
        assert (vtxo.amount, list(vtxo.commitment_txids)) == (60_000, [boarded.commitment_txid])

        coin = Coin(vtxo.outpoint.txid, vtxo.outpoint.vout, vtxo.amount, wallet.vtxo_tree(), False)
        renewed = settle(Wallet(channel, wallet.secret), [coin])

        assert renewed.failed == ""
        assert esplora.tx_status(renewed.commitment_txid) is not None
        forfeit_script = address_to_scriptpubkey(wallet.info.forfeit_address).data
        assert forfeit_script == sim.batches.wallet.pk_script  # type: ignore[union-attr]
        [fresh] = [v for v in vtxos_of(channel, wallet) if not v.is_spent]
        assert list(fresh.commitment_txids) == [renewed.commitment_txid]
        assert time.time() < fresh.expires_at
