"""A wallet's side of arkd's batch protocol, in Python, for the batch tests.

It does what @arkade-os/sdk's ``settle`` does (wallet.ts, wallet/batch.ts, tree/*.ts) with
our own modules: the register proof from ``intentproof``, the tree's MuSig2 nonces and
partial signatures from ``musig2``, the forfeit txs and the boarding signatures with
``arktx``. Each step can be tampered with, so tests see how the server answers a wallet
that cheats or fails.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import queue
import threading
from collections.abc import Callable
from typing import Any

import coincurve
import grpc
from embit.psbt import PSBT
from embit.script import Script, address_to_scriptpubkey
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from arkrelay_arkd import arktx, musig2
from arkrelay_arkd._proto.ark.v1 import service_pb2, service_pb2_grpc, types_pb2
from arkrelay_arkd.intentproof import ProofInput, build_proof, sign_proof
from arkrelay_arkd.sim.txtree import cosigners_of, sweep_root
from arkrelay_arkd.tapscript import (
    ANCHOR_SCRIPT,
    LEAF_VERSION,
    TapTree,
    default_vtxo_tree,
)
from arkrelay_core.nostr import bip340

CALL_TIMEOUT = 10.0


@dataclasses.dataclass
class Coin:
    """Something to settle: a boarding coin on the chain or a VTXO."""

    txid: str
    vout: int
    amount: int
    tree: TapTree
    boarding: bool

    @property
    def outpoint(self) -> str:
        return f"{self.txid}:{self.vout}"

    def collaborative_leaf(self) -> bytes:
        return next(leaf for leaf in self.tree.leaves if leaf[0] == 32)


@dataclasses.dataclass(frozen=True)
class Tamper:
    """What a cheating wallet does wrong."""

    skip_confirm: bool = False
    skip_nonces: bool = False
    bad_partial_signature: bool = False
    skip_signatures: bool = False
    bad_forfeit_signature: bool = False
    skip_finalization: bool = False
    expire_at: int = 0
    #: Leave the batch on chain instead (a collaborative exit): the output's script.
    offboard_to: bytes = b""


HONEST = Tamper()


class Wallet:
    def __init__(self, channel: grpc.Channel, secret: bytes | None = None) -> None:
        self.stub = service_pb2_grpc.ArkServiceStub(channel)
        self.secret = secret or bip340.generate_secret_key()
        self.xonly = bip340.xonly_public_key(self.secret)
        self.info = self.stub.GetInfo(service_pb2.GetInfoRequest(), timeout=CALL_TIMEOUT)
        self.signer = bytes.fromhex(self.info.signer_pubkey)[1:]
        self.forfeit_xonly = bytes.fromhex(self.info.forfeit_pubkey)[1:]
        # A fresh cosigner key per settlement, as the SDK's signer session has.
        self.cosigner_secret = bip340.generate_secret_key()
        self.cosigner = coincurve.PrivateKey(self.cosigner_secret).public_key.format()

    def boarding_tree(self) -> TapTree:
        return default_vtxo_tree(self.xonly, self.signer, self.info.boarding_exit_delay)

    def vtxo_tree(self) -> TapTree:
        return default_vtxo_tree(self.xonly, self.signer, self.info.unilateral_exit_delay)

    def register_message(self, tamper: Tamper) -> str:
        return json.dumps(
            {
                "type": "register",
                "onchain_output_indexes": [0] if tamper.offboard_to else [],
                "valid_at": 0,
                "expire_at": tamper.expire_at,
                "cosigners_public_keys": [self.cosigner.hex()],
            },
            separators=(",", ":"),
        )

    def register(self, coins: list[Coin], tamper: Tamper = HONEST) -> str:
        message = self.register_message(tamper)
        amount = sum(c.amount for c in coins)
        proof = build_proof(
            message,
            [ProofInput(c.txid, c.vout, c.amount, c.tree, c.collaborative_leaf()) for c in coins],
            [(tamper.offboard_to or self.vtxo_tree().pk_script, amount)],
        )
        sign_proof(proof, message, self.secret)
        reply = self.stub.RegisterIntent(
            service_pb2.RegisterIntentRequest(
                intent=types_pb2.Intent(proof=proof.to_string(), message=message)
            ),
            timeout=CALL_TIMEOUT,
        )
        return reply.intent_id


class EventReader:
    """GetEventStream read on a thread into a queue (the stream is blocking grpcio)."""

    def __init__(self, stub: service_pb2_grpc.ArkServiceStub, topics: list[str]) -> None:
        self.events: queue.Queue[Any] = queue.Queue(maxsize=1024)
        self._call = stub.GetEventStream(
            service_pb2.GetEventStreamRequest(topics=topics), timeout=120
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._call:
                self.events.put(event)
        except grpc.RpcError as exc:
            self.events.put(exc)
        self.events.put(None)

    def next(self, timeout: float = 30.0) -> Any:
        while True:
            event = self.events.get(timeout=timeout)
            if isinstance(event, grpc.RpcError):
                raise event
            if event is None:
                raise EOFError("event stream ended")
            if event.WhichOneof("event") != "heartbeat":
                return event

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(timeout=5)


@dataclasses.dataclass
class Outcome:
    commitment_txid: str = ""
    failed: str = ""
    events: list[str] = dataclasses.field(default_factory=list)
    commitment_tx: str = ""


def settle(
    wallet: Wallet,
    coins: list[Coin],
    tamper: Tamper = HONEST,
    *,
    on_registered: Callable[[str], None] = lambda _id: None,
    reader: EventReader | None = None,
) -> Outcome:
    """Register ``coins`` for the next batch and follow it to BatchFinalized or BatchFailed."""
    reader = reader or EventReader(
        wallet.stub, [wallet.cosigner.hex(), *(c.outpoint for c in coins)]
    )
    try:
        first = reader.next()
        assert first.WhichOneof("event") == "stream_started"
        intent_id = wallet.register(coins, tamper)
        on_registered(intent_id)
        return follow(wallet, coins, tamper, reader, intent_id)
    finally:
        reader.close()


def follow(
    wallet: Wallet, coins: list[Coin], tamper: Tamper, reader: EventReader, intent_id: str
) -> Outcome:
    outcome = Outcome()
    my_hash = hashlib.sha256(intent_id.encode()).hexdigest()
    batch_id = ""
    root = b""
    chunks: dict[str, tuple[PSBT, dict[int, str]]] = {}
    connectors: dict[str, tuple[PSBT, dict[int, str]]] = {}
    secnonces: dict[str, bytearray] = {}
    aggnonces: dict[str, bytes] = {}
    unsigned_commitment = None
    while True:
        event = reader.next()
        kind = event.WhichOneof("event")
        outcome.events.append(kind)
        if kind == "batch_started":
            if my_hash not in event.batch_started.intent_id_hashes:
                continue
            batch_id = event.batch_started.id
            root = sweep_root(wallet.forfeit_xonly, event.batch_started.batch_expiry)
            if not tamper.skip_confirm:
                wallet.stub.ConfirmRegistration(
                    service_pb2.ConfirmRegistrationRequest(intent_id=intent_id),
                    timeout=CALL_TIMEOUT,
                )
        elif kind == "batch_failed":
            # Like the SDK's Batch.join: a BatchFailed reaching this wallet (its topics
            # are the failed batch's coins) ends the settlement, at any step.
            outcome.failed = event.batch_failed.reason
            return outcome
        elif not batch_id:
            continue
        elif kind == "tree_tx":
            psbt = arktx.decode_psbt(event.tree_tx.tx)
            target = chunks if event.tree_tx.batch_index == 0 else connectors
            target[arktx.txid(psbt)] = (psbt, dict(event.tree_tx.children))
        elif kind == "tree_signing_started":
            unsigned_commitment = arktx.decode_psbt(
                event.tree_signing_started.unsigned_commitment_tx
            )
            nonces = {}
            for txid, (psbt, _) in chunks.items():
                if wallet.cosigner in cosigners_of(psbt):
                    secnonce, pubnonce = musig2.nonce_gen(
                        wallet.cosigner_secret, wallet.cosigner, None, None, None
                    )
                    secnonces[txid] = secnonce
                    nonces[txid] = pubnonce.hex()
            if tamper.skip_nonces:
                continue
            wallet.stub.SubmitTreeNonces(
                service_pb2.SubmitTreeNoncesRequest(
                    batch_id=batch_id, pubkey=wallet.cosigner.hex(), tree_nonces=nonces
                ),
                timeout=CALL_TIMEOUT,
            )
        elif kind == "tree_nonces":
            psbt, _ = chunks[event.tree_nonces.txid]
            keys = cosigners_of(psbt)
            by_key = dict(event.tree_nonces.nonces)
            aggnonces[event.tree_nonces.txid] = musig2.nonce_agg(
                [bytes.fromhex(by_key[k[1:].hex()]) for k in keys]
            )
            if set(aggnonces) >= set(secnonces) and not tamper.skip_signatures:
                assert unsigned_commitment is not None
                sigs = _partial_signatures(
                    wallet, chunks, unsigned_commitment, root, secnonces, aggnonces
                )
                if tamper.bad_partial_signature:
                    first = next(iter(sigs))
                    sigs[first] = (int(sigs[first], 16) ^ 1).to_bytes(32, "big").hex()
                wallet.stub.SubmitTreeSignatures(
                    service_pb2.SubmitTreeSignaturesRequest(
                        batch_id=batch_id, pubkey=wallet.cosigner.hex(), tree_signatures=sigs
                    ),
                    timeout=CALL_TIMEOUT,
                )
        elif kind == "batch_finalization":
            outcome.commitment_tx = event.batch_finalization.commitment_tx
            if tamper.skip_finalization:
                continue
            _sign_finalization(wallet, coins, tamper, outcome.commitment_tx, connectors)
        elif kind == "batch_finalized":
            outcome.commitment_txid = event.batch_finalized.commitment_txid
            return outcome


def _partial_signatures(
    wallet: Wallet,
    chunks: dict[str, tuple[PSBT, dict[int, str]]],
    commitment: PSBT,
    root: bytes,
    secnonces: dict[str, bytearray],
    aggnonces: dict[str, bytes],
) -> dict[str, str]:
    sigs = {}
    for txid, secnonce in secnonces.items():
        psbt, _ = chunks[txid]
        parent_txid = psbt.inputs[0].txid.hex()
        index = psbt.inputs[0].vout
        if parent_txid in chunks:
            prevout = chunks[parent_txid][0].tx.vout[index]
        else:
            assert parent_txid == arktx.txid(commitment)
            prevout = commitment.tx.vout[index]
        msg = psbt.tx.sighash_taproot(
            0,
            script_pubkeys=[prevout.script_pubkey],
            values=[prevout.value],
            sighash=SIGHASH.DEFAULT,
        )
        session = musig2.tree_session(aggnonces[txid], cosigners_of(psbt), root, msg)
        sigs[txid] = musig2.sign(secnonce, wallet.cosigner_secret, session).hex()
    return sigs


def _connector_leaves(connectors: dict[str, tuple[PSBT, dict[int, str]]]) -> list[PSBT]:
    return [psbt for psbt, children in connectors.values() if not children]


def _sign_finalization(
    wallet: Wallet,
    coins: list[Coin],
    tamper: Tamper,
    commitment_b64: str,
    connectors: dict[str, tuple[PSBT, dict[int, str]]],
) -> None:
    commitment = arktx.decode_psbt(commitment_b64)
    signed_boarding = False
    forfeits = []
    leaves = _connector_leaves(connectors)
    forfeit_script = address_to_scriptpubkey(wallet.info.forfeit_address).data
    for coin in coins:
        leaf = coin.collaborative_leaf()
        control = coin.tree.control_block(coin.tree.index(leaf))
        if coin.boarding:
            index = next(
                i
                for i in range(len(commitment.inputs))
                if arktx.input_outpoint(commitment, i) == coin.outpoint
            )
            commitment.inputs[index].taproot_scripts[control] = leaf + bytes([LEAF_VERSION])
            arktx.sign_input(commitment, index, wallet.secret)
            signed_boarding = True
            continue
        connector = leaves.pop(0)
        out = connector.tx.vout[0]
        tx = Transaction(
            version=3,
            vin=[
                TransactionInput(bytes.fromhex(coin.txid), coin.vout),
                TransactionInput(connector.tx.txid(), 0),
            ],
            vout=[
                TransactionOutput(coin.amount + out.value, Script(forfeit_script)),
                TransactionOutput(0, Script(ANCHOR_SCRIPT)),
            ],
        )
        forfeit = PSBT(tx, unknown={})
        forfeit.inputs[0].witness_utxo = TransactionOutput(coin.amount, Script(coin.tree.pk_script))
        forfeit.inputs[1].witness_utxo = out
        for inp in forfeit.inputs:
            inp.unknown = {}
        forfeit.inputs[0].taproot_scripts[control] = leaf + bytes([LEAF_VERSION])
        secret = bip340.generate_secret_key() if tamper.bad_forfeit_signature else wallet.secret
        signature = bip340.schnorr_sign(secret, arktx.tapscript_sighash(forfeit, 0))
        arktx.add_signature(forfeit, 0, wallet.xonly, signature)
        forfeits.append(forfeit.to_string())
    if forfeits or signed_boarding:
        wallet.stub.SubmitSignedForfeitTxs(
            service_pb2.SubmitSignedForfeitTxsRequest(
                signed_forfeit_txs=forfeits,
                signed_commitment_tx=commitment.to_string() if signed_boarding else "",
            ),
            timeout=CALL_TIMEOUT,
        )


__all__ = ["Coin", "EventReader", "Outcome", "Tamper", "Wallet", "follow", "settle"]
