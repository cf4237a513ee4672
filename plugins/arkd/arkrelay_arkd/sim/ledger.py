"""The simulator's state: a VTXO set and the offchain-tx rules arkd v0.9.15 applies to it.

Thread-safe (gRPC handlers run on a thread pool): every public method takes the lock.
Transaction events go to subscriber queues, each bounded; a subscriber that falls behind
is dropped (its stream ends) rather than letting the ledger block or grow without bound.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from arkrelay_core.nostr import bip340

from .. import arktx
from ..tapscript import (
    ANCHOR_SCRIPT,
    TapTree,
    csv_closure,
    default_vtxo_tree,
    multisig_keys,
    parse_csv_closure,
    sequence_delay,
)
from .errors import code

__all__ = ["Ledger", "SimTxEvent", "SimVtxo"]

log = logging.getLogger(__name__)

VERSION = "0.9.15-arkrelay-sim"
SUBSCRIBER_QUEUE = 256


@dataclasses.dataclass
class SimVtxo:
    txid: str
    vout: int
    amount: int
    script: str  # hex P2TR pkScript
    created_at: int
    expires_at: int
    commitment_txids: list[str]
    preconfirmed: bool = False
    swept: bool = False
    spent: bool = False
    spent_by: str = ""
    ark_txid: str = ""
    settled_by: str = ""
    pending: bool = False

    @property
    def outpoint(self) -> str:
        return f"{self.txid}:{self.vout}"

    @property
    def xonly(self) -> str:
        return self.script[4:]

    def copy(self) -> SimVtxo:
        return dataclasses.replace(self, commitment_txids=list(self.commitment_txids))


@dataclasses.dataclass(frozen=True)
class SimTxEvent:
    kind: str  # "ark_tx" | "commitment_tx" | "sweep_tx"
    txid: str
    tx: str
    spent: tuple[SimVtxo, ...]
    spendable: tuple[SimVtxo, ...]
    checkpoints: tuple[tuple[str, str, str], ...] = ()  # (vtxo outpoint, txid, tx)


@dataclasses.dataclass
class _Pending:
    ark_txid: str
    final_ark_tx: str
    signed_checkpoints: dict[str, str]  # checkpoint txid -> b64
    spent: list[str]  # VTXO outpoints, in ark-input order
    expires_at: int


class Ledger:
    def __init__(
        self,
        *,
        network: str = "regtest",
        unilateral_exit_delay: int = 512,
        checkpoint_exit_delay: int = 512,
        vtxo_lifetime: float = 7 * 86400,
        dust: int = 330,
        clock: Callable[[], float] = time.time,
        signer_secret: bytes | None = None,
    ) -> None:
        self.network = network
        self.unilateral_exit_delay = unilateral_exit_delay
        self.vtxo_lifetime = vtxo_lifetime
        self.dust = dust
        self.clock = clock
        self._signer_secret = signer_secret or bip340.generate_secret_key()
        self._forfeit_secret = bip340.generate_secret_key()
        self.signer_xonly = bip340.xonly_public_key(self._signer_secret)
        self.forfeit_xonly = bip340.xonly_public_key(self._forfeit_secret)
        self.checkpoint_tapscript = csv_closure(checkpoint_exit_delay, self.forfeit_xonly)
        self._lock = threading.Lock()
        self._vtxos: dict[str, SimVtxo] = {}
        self._pending: dict[str, _Pending] = {}
        self._finalized: set[str] = set()
        self._subscribers: list[queue.Queue[SimTxEvent | None]] = []
        self.batches = 0

    # ------------------------------------------------------------------ info and funding

    def info(self) -> dict[str, object]:
        digest = hashlib.sha256(
            self.signer_xonly + self.checkpoint_tapscript + self.network.encode()
        ).hexdigest()
        return {
            "version": VERSION,
            "signer_pubkey": "02" + self.signer_xonly.hex(),
            "forfeit_pubkey": "02" + self.forfeit_xonly.hex(),
            "checkpoint_tapscript": self.checkpoint_tapscript.hex(),
            "network": self.network,
            "unilateral_exit_delay": self.unilateral_exit_delay,
            "boarding_exit_delay": self.unilateral_exit_delay * 2,
            "vtxo_min_amount": self.dust,
            "vtxo_max_amount": -1,
            "utxo_min_amount": self.dust,
            "utxo_max_amount": -1,
            "dust": self.dust,
            "digest": digest,
            "max_tx_weight": 40_000,
        }

    def board(self, owner: bytes, amount: int, *, expires_at: int | None = None) -> SimVtxo:
        """Fund ``owner`` with a new VTXO, as if it had boarded in a batch just mined."""
        if amount < self.dust:
            raise ValueError(f"cannot board {amount} sats: below dust ({self.dust})")
        tree = default_vtxo_tree(owner, self.signer_xonly, self.unilateral_exit_delay)
        now = int(self.clock())
        with self._lock:
            commitment = _commitment_tx([(tree.pk_script, amount)])
            vtxo = SimVtxo(
                txid=commitment.txid().hex(),
                vout=0,
                amount=amount,
                script=tree.pk_script.hex(),
                created_at=now,
                expires_at=expires_at if expires_at is not None else int(now + self.vtxo_lifetime),
                commitment_txids=[commitment.txid().hex()],
            )
            self._vtxos[vtxo.outpoint] = vtxo
            self.batches += 1
            self._publish(
                SimTxEvent(
                    "commitment_tx", vtxo.txid, commitment.serialize().hex(), (), (vtxo.copy(),)
                )
            )
            return vtxo.copy()

    def mine_batch(self) -> str | None:
        """Settle every preconfirmed VTXO in a new commitment tx (renewing its expiry)."""
        now = int(self.clock())
        with self._lock:
            fresh = [v for v in self._vtxos.values() if v.preconfirmed and not v.spent]
            if not fresh:
                return None
            commitment = _commitment_tx([(bytes.fromhex(v.script), v.amount) for v in fresh])
            commitment_txid = commitment.txid().hex()
            for v in fresh:
                v.preconfirmed = False
                v.commitment_txids.append(commitment_txid)
                v.expires_at = int(now + self.vtxo_lifetime)
            self.batches += 1
            self._publish(
                SimTxEvent(
                    "commitment_tx",
                    commitment_txid,
                    commitment.serialize().hex(),
                    (),
                    tuple(v.copy() for v in fresh),
                )
            )
            return commitment_txid

    def expire(self, outpoint: str) -> None:
        with self._lock:
            vtxo = self._vtxos[outpoint]
            vtxo.expires_at = int(self.clock()) - 1

    # ------------------------------------------------------------------ indexer

    def get_vtxos(
        self,
        *,
        scripts: Sequence[str] = (),
        outpoints: Sequence[str] = (),
        spendable_only: bool = False,
        spent_only: bool = False,
        pending_only: bool = False,
    ) -> list[SimVtxo]:
        now = int(self.clock())
        with self._lock:
            if outpoints:
                found = [self._vtxos[o] for o in outpoints if o in self._vtxos]
            else:
                wanted = {s.lower() for s in scripts}
                found = [v for v in self._vtxos.values() if v.script in wanted]
                if spendable_only:
                    found = [v for v in found if not v.spent and not _recoverable(v, now)]
                elif spent_only:
                    found = [v for v in found if v.spent]
                elif pending_only:
                    found = [v for v in found if v.pending]
            return [v.copy() for v in sorted(found, key=lambda v: (v.created_at, v.outpoint))]

    def is_expired(self, vtxo: SimVtxo) -> bool:
        return _recoverable(vtxo, int(self.clock()))

    # ------------------------------------------------------------------ offchain txs

    def submit(
        self, signed_ark_tx: str, checkpoint_txs: Sequence[str]
    ) -> tuple[str, str, list[str]]:
        """SubmitTx: validate like arkd, co-sign, lock the inputs; (txid, final tx, checkpoints)."""
        try:
            ark = arktx.decode_psbt(signed_ark_tx)
        except arktx.ArkTxError as exc:
            raise code.INVALID_ARK_PSBT(f"failed to parse tx: {exc}") from exc
        txid = arktx.txid(ark)
        checkpoints: dict[str, PSBT] = {}
        by_vtxo: dict[str, str] = {}
        for raw in checkpoint_txs:
            try:
                cp = arktx.decode_psbt(raw)
            except arktx.ArkTxError as exc:
                raise code.INVALID_CHECKPOINT_PSBT(f"failed to parse tx: {exc}") from exc
            cp_txid = arktx.txid(cp)
            if not cp.inputs:
                raise code.INVALID_PSBT_MISSING_INPUT(f"invalid checkpoint tx {cp_txid}")
            key = arktx.input_outpoint(cp, 0)
            if key in by_vtxo:
                raise code.INVALID_PSBT_INPUT(f"duplicated vtxo input {key}")
            checkpoints[cp_txid] = cp
            by_vtxo[key] = cp_txid

        with self._lock:
            if txid in self._pending or txid in self._finalized:
                raise code.INVALID_ARK_PSBT(f"duplicated offchain tx {txid}")
            missing = [o for o in by_vtxo if o not in self._vtxos]
            if missing:
                raise code.VTXO_NOT_FOUND(
                    "some vtxos not found", vtxo_outpoints=",".join(sorted(by_vtxo))
                )
            for outpoint in by_vtxo:
                if self._vtxos[outpoint].pending:
                    raise code.VTXO_ALREADY_SPENT(
                        f"{outpoint} already spent", vtxo_outpoint=outpoint
                    )
            spends, expires_at = self._check_inputs(ark, txid, checkpoints)
            outputs = self._check_outputs(ark)
            rebuilt = arktx.build_offchain_txs(spends, outputs, self.checkpoint_tapscript)
            rebuilt_ids = {arktx.txid(cp) for cp in rebuilt.checkpoints}
            if rebuilt_ids != set(checkpoints):
                raise code.CHECKPOINT_MISMATCH(
                    f"invalid checkpoint txs: {sorted(rebuilt_ids - set(checkpoints))} not found"
                )
            if arktx.txid(rebuilt.ark_tx) != txid:
                raise code.ARK_TX_MISMATCH(
                    f"expected tx {arktx.txid(rebuilt.ark_tx)}, got {txid}",
                    expected_txid=txid,
                )
            self._check_owner_signatures(ark, txid)

            for i in range(len(ark.inputs)):
                arktx.sign_input(ark, i, self._signer_secret)
            signed_checkpoints: dict[str, str] = {}
            for cp in rebuilt.checkpoints:
                arktx.sign_input(cp, 0, self._signer_secret)
                signed_checkpoints[arktx.txid(cp)] = arktx.encode_psbt(cp)
            spent = [arktx.input_outpoint(cp, 0) for cp in rebuilt.checkpoints]
            for cp in rebuilt.checkpoints:
                vtxo = self._vtxos[arktx.input_outpoint(cp, 0)]
                vtxo.spent, vtxo.pending = True, True
                vtxo.spent_by, vtxo.ark_txid = arktx.txid(cp), txid
            final = arktx.encode_psbt(ark)
            self._pending[txid] = _Pending(txid, final, signed_checkpoints, spent, expires_at)
            log.info("sim: accepted ark tx %s spending %s", txid, ", ".join(spent))
            return txid, final, list(signed_checkpoints.values())

    def _check_inputs(
        self, ark: PSBT, txid: str, checkpoints: dict[str, PSBT]
    ) -> tuple[list[arktx.VtxoSpend], int]:
        now = int(self.clock())
        spends: list[arktx.VtxoSpend] = []
        expires_at = 2**62
        for index, inp in enumerate(ark.inputs):
            cp = checkpoints.get(inp.txid.hex())
            if cp is None:
                raise code.INVALID_PSBT_INPUT(f"missing checkpoint tx for input {index}")
            cp_txid = arktx.txid(cp)
            vtxo = self._vtxos[arktx.input_outpoint(cp, 0)]
            witness_utxo = cp.inputs[0].witness_utxo
            if witness_utxo is None:
                raise code.INVALID_PSBT_INPUT(f"missing witness utxo on input {index}")
            try:
                _, leaf = arktx.spend_leaf(cp, 0)
                leaves = arktx.taptree_leaves(cp, 0)
            except arktx.ArkTxError as exc:
                raise code.INVALID_PSBT_INPUT(f"{exc} in tx {cp_txid}") from exc
            if vtxo.spent:
                raise code.VTXO_ALREADY_SPENT(
                    f"{vtxo.outpoint} already spent", vtxo_outpoint=vtxo.outpoint
                )
            if _recoverable(vtxo, now):
                raise code.VTXO_RECOVERABLE(
                    f"{vtxo.outpoint} is recoverable", vtxo_outpoint=vtxo.outpoint
                )
            self._check_vtxo_script(leaves)
            tree = TapTree.from_leaves(leaves)
            if tree.output_key.hex() != vtxo.xonly:
                raise code.INVALID_PSBT_INPUT(f"expected {vtxo.xonly}, got {tree.output_key.hex()}")
            if witness_utxo.script_pubkey.data != tree.pk_script:
                raise code.INVALID_PSBT_INPUT("witness utxo script mismatch")
            if witness_utxo.value != vtxo.amount:
                raise code.INVALID_PSBT_INPUT(
                    f"witness utxo value mismatch: expected {vtxo.amount}, got {witness_utxo.value}"
                )
            if leaf not in leaves or multisig_keys(leaf) is None:
                raise code.INVALID_PSBT_INPUT(f"invalid spending tapscript on input {index}")
            if not ark.inputs[index].taproot_scripts:
                raise code.INVALID_PSBT_INPUT(
                    f"missing taproot leaf script in ark tx input {index}"
                )
            spends.append(arktx.VtxoSpend(vtxo.txid, vtxo.vout, vtxo.amount, tree, leaf))
            expires_at = min(expires_at, vtxo.expires_at)
        return spends, expires_at

    def _check_vtxo_script(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            csv = parse_csv_closure(leaf)
            if csv is not None:
                if sequence_delay(csv[0]) < self.unilateral_exit_delay:
                    raise code.INVALID_VTXO_SCRIPT("exit delay below the server minimum")
                continue
            keys = multisig_keys(leaf)
            if keys is None:
                raise code.INVALID_VTXO_SCRIPT("unsupported closure")
            if self.signer_xonly not in keys:
                raise code.INVALID_VTXO_SCRIPT("forfeit closure without the signer key")

    def _check_outputs(self, ark: PSBT) -> list[tuple[bytes, int]]:
        vout = ark.tx.vout
        if not vout or vout[-1].script_pubkey.data != ANCHOR_SCRIPT or vout[-1].value != 0:
            raise code.MALFORMED_ARK_TX("the last output must be the anchor")
        outputs: list[tuple[bytes, int]] = []
        for i, out in enumerate(vout[:-1]):
            script = out.script_pubkey.data
            if len(script) != 34 or script[:2] != b"\x51\x20":
                raise code.MALFORMED_ARK_TX(f"output {i} is not a taproot output")
            if out.value < self.dust:
                raise code.AMOUNT_TOO_LOW(f"output {i} amount {out.value} below {self.dust}")
            outputs.append((script, out.value))
        return outputs

    def _check_owner_signatures(self, ark: PSBT, txid: str) -> None:
        for index in range(len(ark.inputs)):
            keys = arktx.signature_keys(ark, index)
            verdicts = arktx.verify_input_signatures(ark, index)
            owners = [k for k in keys if k != self.signer_xonly]
            if not any(k in verdicts for k in owners):
                raise code.ARK_TX_INPUT_NOT_SIGNED(f"tx {txid} is not signed")
            if not all(verdicts.get(k) for k in owners) or not all(verdicts.values()):
                raise code.INVALID_SIGNATURE(f"invalid signature in ark tx {txid}")

    def finalize(self, ark_txid: str, final_checkpoint_txs: Sequence[str]) -> None:
        with self._lock:
            if ark_txid in self._finalized:
                return
            pending = self._pending.get(ark_txid)
            if pending is None:
                raise code.TX_NOT_FOUND(f"offchain tx {ark_txid} not found", txid=ark_txid)
            final: dict[str, str] = {}
            for raw in final_checkpoint_txs:
                try:
                    cp = arktx.decode_psbt(raw)
                    verdicts = arktx.verify_input_signatures(cp, 0)
                    keys = arktx.signature_keys(cp, 0)
                except arktx.ArkTxError as exc:
                    raise code.INVALID_SIGNATURE(
                        f"invalid signature in checkpoint tx {raw}"
                    ) from exc
                if not all(verdicts.get(k) for k in keys) or not all(verdicts.values()):
                    raise code.INVALID_SIGNATURE(f"invalid signature in checkpoint tx {raw}")
                cp_txid = arktx.txid(cp)
                if cp_txid not in pending.signed_checkpoints:
                    raise code.INVALID_PSBT_INPUT(f"tx {cp_txid} not found")
                final[cp_txid] = raw
            if set(final) != set(pending.signed_checkpoints):
                raise code.INVALID_PSBT_MISSING_INPUT(f"missing checkpoint txs for {ark_txid}")

            ark = arktx.decode_psbt(pending.final_ark_tx)
            now = int(self.clock())
            spent: list[SimVtxo] = []
            for outpoint in pending.spent:
                vtxo = self._vtxos[outpoint]
                vtxo.pending = False
                spent.append(vtxo.copy())
            created: list[SimVtxo] = []
            for index, script, amount in arktx.outputs_of(ark):
                vtxo = SimVtxo(
                    txid=ark_txid,
                    vout=index,
                    amount=amount,
                    script=script.hex(),
                    created_at=now,
                    expires_at=pending.expires_at,
                    commitment_txids=[],
                    preconfirmed=True,
                )
                self._vtxos[vtxo.outpoint] = vtxo
                created.append(vtxo.copy())
            del self._pending[ark_txid]
            self._finalized.add(ark_txid)
            checkpoints = tuple(
                (arktx.input_outpoint(arktx.decode_psbt(tx), 0), cp_txid, tx)
                for cp_txid, tx in sorted(final.items())
            )
            self._publish(
                SimTxEvent(
                    "ark_tx",
                    ark_txid,
                    pending.final_ark_tx,
                    tuple(spent),
                    tuple(created),
                    checkpoints,
                )
            )
            log.info("sim: finalized ark tx %s", ark_txid)

    def pending_txs(self) -> list[tuple[str, str, list[str]]]:
        with self._lock:
            return [
                (p.ark_txid, p.final_ark_tx, list(p.signed_checkpoints.values()))
                for p in self._pending.values()
            ]

    # ------------------------------------------------------------------ events

    def subscribe(self) -> queue.Queue[SimTxEvent | None]:
        q: queue.Queue[SimTxEvent | None] = queue.Queue(maxsize=SUBSCRIBER_QUEUE)
        with self._lock:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[SimTxEvent | None]) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)

    def close_subscribers(self) -> None:
        with self._lock:
            for q in self._subscribers:
                _offer(q, None)
            self._subscribers.clear()

    def _publish(self, event: SimTxEvent) -> None:
        for q in list(self._subscribers):
            if not _offer(q, event):
                log.warning("sim: dropping a transaction-stream subscriber that fell behind")
                self._subscribers.remove(q)
                _offer(q, None)


def _offer(q: queue.Queue[SimTxEvent | None], item: SimTxEvent | None) -> bool:
    try:
        q.put_nowait(item)
    except queue.Full:
        return False
    return True


def _recoverable(vtxo: SimVtxo, now: int) -> bool:
    return vtxo.swept or vtxo.expires_at <= now


def _commitment_tx(outputs: Sequence[tuple[bytes, int]]) -> Transaction:
    """A stand-in commitment tx: one made-up funding input, the given outputs, an anchor."""
    return Transaction(
        version=3,
        vin=[TransactionInput(os.urandom(32), 0)],
        vout=[
            *(TransactionOutput(amount, Script(script)) for script, amount in outputs),
            TransactionOutput(0, Script(ANCHOR_SCRIPT)),
        ],
    )
