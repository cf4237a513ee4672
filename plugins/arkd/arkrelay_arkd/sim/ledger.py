"""The simulator's state: a VTXO set, its batches and offchain txs, and their event streams.

Thread-safe (gRPC handlers run on a thread pool): every public method takes the lock.
Transaction events go to subscriber queues, each bounded; a subscriber that falls behind
is dropped (its stream ends) rather than letting the ledger block or grow without bound.

With a ``state_file`` the ledger is durable like arkd's database: every change is appended
to it (fsynced before the call returns, sim/statelog.py) and a ledger opened on the same
file resumes with the same server keys, VTXOs and pending transactions, so a gateway killed
mid-ceremony finds its sessions' VTXOs where they were. A change writes only the records it
touched, so its cost does not grow with the run; the file is compacted into one snapshot
when it opens and whenever the changes outgrow the snapshot.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from arkrelay_core.nostr import bip340

from .. import arktx
from ..closures import RelativeLocktime
from ..tapscript import csv_closure, default_vtxo_tree
from . import defaults, rules
from .errors import code
from .fees import (
    FeeEstimator,
    IntentFeePrograms,
    OffchainInput,
    OnchainInput,
    Output,
    to_satoshis,
)
from .journal import JournalEntry, journal_entry
from .logfile import AppendLog
from .statelog import Change, PendingTx, Snapshot, load
from .vtxos import SimTxEvent, SimVtxo, commitment_tx, recoverable

__all__ = ["Ledger", "PendingAnswer", "SimTxEvent", "SimVtxo"]

log = logging.getLogger(__name__)

VERSION = "0.9.15-arkrelay-sim"
SUBSCRIBER_QUEUE = 256
#: The state file is compacted once its changes exceed this many times its snapshot (and
#: COMPACT_FLOOR bytes): compaction's cost stays a fixed share of what changes write.
COMPACT_FACTOR = 4
COMPACT_FLOOR = 1 << 20
#: arkd's intent fees until an operator sets them (UpdateIntentFees): none.
FREE = IntentFeePrograms()


@dataclasses.dataclass(frozen=True)
class PendingAnswer:
    """What GetPendingTx (and SubmitTx) answer for one ark tx."""

    ark_txid: str
    final_ark_tx: str
    signed_checkpoint_txs: list[str]


class Ledger:
    def __init__(
        self,
        *,
        network: str = "regtest",
        unilateral_exit_delay: int = defaults.UNILATERAL_EXIT_DELAY,
        boarding_exit_delay: int = defaults.BOARDING_EXIT_DELAY,
        checkpoint_exit_delay: int = defaults.CHECKPOINT_EXIT_DELAY,
        vtxo_lifetime: float = defaults.VTXO_TREE_EXPIRY,
        dust: int = defaults.DUST,
        vtxo_min_amount: int = defaults.VTXO_MIN_AMOUNT,
        vtxo_max_amount: int = defaults.VTXO_MAX_AMOUNT,
        utxo_min_amount: int = defaults.UTXO_MIN_AMOUNT,
        utxo_max_amount: int = defaults.UTXO_MAX_AMOUNT,
        max_op_return_outputs: int = defaults.MAX_OP_RETURN_OUTPUTS,
        max_tx_weight: int = defaults.MAX_TX_WEIGHT,
        intent_fees: IntentFeePrograms = FREE,
        clock: Callable[[], float] = time.time,
        signer_secret: bytes | None = None,
        state_file: Path | None = None,
    ) -> None:
        """Every default is arkd's (sim/defaults.py); the checks are arkd's settings checks
        (internal/core/domain/settings.go ``Validate``) for the settings modelled here."""
        self.network = network
        # arkd reads each delay as BIP68 does: below 512 blocks, else seconds rounded down to
        # a multiple of 512 (its default 86400 s is used, and reported, as 86016 s).
        unilateral = RelativeLocktime.parse(unilateral_exit_delay)
        boarding = RelativeLocktime.parse(boarding_exit_delay)
        checkpoint = RelativeLocktime.parse(checkpoint_exit_delay)
        expiry_in_blocks = vtxo_lifetime < 512
        for name, delay in (
            ("unilateral exit delay", unilateral),
            ("boarding exit delay", boarding),
            ("checkpoint exit delay", checkpoint),
        ):
            if delay.blocks != expiry_in_blocks:
                raise ValueError(
                    f"all delays must be above or below value 512 ({name} and vtxo tree "
                    "expiry type mismatch)"
                )
        self.unilateral_exit_delay = unilateral.value
        self.boarding_exit_delay = boarding.value
        self.vtxo_lifetime = vtxo_lifetime
        self.dust = dust
        if vtxo_min_amount == 0:
            raise ValueError("vtxo min amount must be greater than 0")
        if utxo_min_amount == 0:
            raise ValueError("utxo min amount must be greater than 0")
        if unilateral.value == boarding.value:
            raise ValueError("unilateral exit delay and boarding exit delay must be different")
        # arkd keeps -1 ("the dust limit") in its settings and resolves it at start-up.
        self.vtxo_min_amount = dust if vtxo_min_amount < 0 else vtxo_min_amount
        self.utxo_min_amount = max(utxo_min_amount, dust)
        self.vtxo_max_amount = vtxo_max_amount
        self.utxo_max_amount = utxo_max_amount
        if 0 < vtxo_max_amount < self.vtxo_min_amount:
            raise ValueError(
                "vtxo max amount must be greater than or equal to min amount, "
                f"got {vtxo_max_amount} < {self.vtxo_min_amount}"
            )
        self.max_op_return_outputs = max(1, max_op_return_outputs)
        self.max_tx_weight = max_tx_weight
        # arkd allows CSV delays in blocks only when its VTXO tree expiry is in blocks.
        self.block_type_allowed = expiry_in_blocks
        self.intent_fees = intent_fees
        self.fees = FeeEstimator(intent_fees, clock=clock)
        self.clock = clock
        self.state_file = state_file
        saved = load(state_file, network) if state_file is not None else None
        self._signer_secret = signer_secret or bip340.generate_secret_key()
        self._forfeit_secret = bip340.generate_secret_key()
        if saved is not None:
            self._signer_secret = bytes.fromhex(saved.signer_secret)
            self._forfeit_secret = bytes.fromhex(saved.forfeit_secret)
        self.signer_xonly = bip340.xonly_public_key(self._signer_secret)
        self.forfeit_xonly = bip340.xonly_public_key(self._forfeit_secret)
        self.checkpoint_tapscript = csv_closure(checkpoint.value, self.forfeit_xonly)
        self._lock = threading.Lock()
        self._vtxos: dict[str, SimVtxo] = {}
        # Outpoints by script, all and unspent only (in creation order): the indexer's
        # queries by script cost what the script holds, not what the ledger ever made.
        self._by_script: dict[str, dict[str, None]] = {}
        self._unspent_by_script: dict[str, dict[str, None]] = {}
        self._pending: dict[str, PendingTx] = {}
        self._finalized: set[str] = set()
        self._subscribers: list[queue.Queue[SimTxEvent | None]] = []
        self._journal: list[JournalEntry] = []
        self._observers: list[Callable[[SimTxEvent], None]] = []
        self.batches = 0
        #: Which of these outpoints an intent holds for a batch (the batch engine answers):
        #: arkd refuses to spend those offchain.
        self.registered: Callable[[Sequence[str]], str | None] = lambda _outpoints: None
        if saved is not None:
            for v in saved.vtxos:
                self._put(v)
            self._pending = {p.ark_txid: p for p in saved.pending}
            self._finalized = set(saved.finalized)
            self.batches = saved.batches
            self._journal = list(saved.journal)
            log.info("arkd simulator resumed from %s: %d VTXOs", state_file, len(self._vtxos))
        self._log = AppendLog(state_file) if state_file is not None else None
        if self._log is not None:
            # Also drops a torn last change, which a later append would otherwise extend.
            with self._lock:
                self._log.rewrite(self._snapshot())

    def _put(self, vtxo: SimVtxo) -> None:
        self._vtxos[vtxo.outpoint] = vtxo
        self._by_script.setdefault(vtxo.script, {})[vtxo.outpoint] = None
        if not vtxo.spent:
            self._unspent_by_script.setdefault(vtxo.script, {})[vtxo.outpoint] = None

    def _mark_spent(self, vtxo: SimVtxo) -> None:
        vtxo.spent = True
        unspent = self._unspent_by_script.get(vtxo.script, {})
        unspent.pop(vtxo.outpoint, None)
        if not unspent:
            self._unspent_by_script.pop(vtxo.script, None)

    def _snapshot(self) -> bytes:
        return msgspec.json.encode(
            Snapshot(
                self.network,
                self._signer_secret.hex(),
                self._forfeit_secret.hex(),
                list(self._vtxos.values()),
                list(self._pending.values()),
                sorted(self._finalized),
                self.batches,
                self._journal,
            )
        )

    def _save(self, change: Change) -> None:
        """Make ``change`` (already applied in memory) durable; the caller holds the lock."""
        if self._log is None:
            return
        self._log.append(msgspec.json.encode(change))
        if self._log.outgrown(COMPACT_FACTOR, COMPACT_FLOOR):
            self._log.rewrite(self._snapshot())

    @property
    def signer_secret(self) -> bytes:
        """The signer key's secret: the batch engine cosigns trees and boarding inputs."""
        return self._signer_secret

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

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
            "boarding_exit_delay": self.boarding_exit_delay,
            "vtxo_min_amount": self.vtxo_min_amount,
            "vtxo_max_amount": self.vtxo_max_amount,
            "utxo_min_amount": self.utxo_min_amount,
            "utxo_max_amount": self.utxo_max_amount,
            "dust": self.dust,
            "digest": digest,
            "max_tx_weight": self.max_tx_weight,
            "max_op_return_outputs": self.max_op_return_outputs,
            # arkd's GetInfo leaves the tx fee rate unset, so it reads "0".
            "fees": {
                "intent_fee": msgspec.structs.asdict(self.intent_fees),
                "tx_fee_rate": "0",
            },
        }

    def intent_fee(
        self,
        offchain_inputs: Sequence[OffchainInput],
        onchain_inputs: Sequence[OnchainInput],
        offchain_outputs: Sequence[Output],
        onchain_outputs: Sequence[Output],
    ) -> int:
        """What arkd's fee manager charges an intent, in whole sats (rounded up)."""
        total = self.fees.total(offchain_inputs, onchain_inputs, offchain_outputs, onchain_outputs)
        return to_satoshis(total)

    def board(self, owner: bytes, amount: int, *, expires_at: int | None = None) -> SimVtxo:
        """Fund ``owner`` with a new VTXO, as if it had boarded in a batch just mined."""
        if amount < self.dust:
            raise ValueError(f"cannot board {amount} sats: below dust ({self.dust})")
        tree = default_vtxo_tree(owner, self.signer_xonly, self.unilateral_exit_delay)
        now = int(self.clock())
        with self._lock:
            commitment = commitment_tx([(tree.pk_script, amount)])
            vtxo = SimVtxo(
                txid=commitment.txid().hex(),
                vout=0,
                amount=amount,
                script=tree.pk_script.hex(),
                created_at=now,
                expires_at=expires_at if expires_at is not None else int(now + self.vtxo_lifetime),
                commitment_txids=[commitment.txid().hex()],
            )
            self._put(vtxo)
            self.batches += 1
            self._save(Change(vtxos=[vtxo], batches=self.batches))
            self._publish(
                SimTxEvent(
                    "commitment_tx", vtxo.txid, commitment.serialize().hex(), (), (vtxo.copy(),)
                )
            )
            return vtxo.copy()

    def mine_batch(self) -> str | None:
        """Settle every preconfirmed VTXO in a new commitment tx (renewing its expiry).

        Swept ones (sub-dust VTXOs among them) stay out: arkd settles those only through an
        owner's intent that brings them up to dust, which the simulator does not run.
        """
        now = int(self.clock())
        with self._lock:
            fresh = [
                v for v in self._vtxos.values() if v.preconfirmed and not v.spent and not v.swept
            ]
            if not fresh:
                return None
            commitment = commitment_tx([(bytes.fromhex(v.script), v.amount) for v in fresh])
            commitment_txid = commitment.txid().hex()
            for v in fresh:
                v.preconfirmed = False
                v.updated_at = self._now_ms()
                v.commitment_txids.append(commitment_txid)
                v.expires_at = int(now + self.vtxo_lifetime)
            self.batches += 1
            self._save(Change(vtxos=fresh, batches=self.batches))
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
            vtxo.updated_at = self._now_ms()
            self._save(Change(vtxos=[vtxo]))

    # ------------------------------------------------------------------ batches

    def find_vtxo(self, outpoint: str) -> SimVtxo | None:
        with self._lock:
            vtxo = self._vtxos.get(outpoint)
            return vtxo.copy() if vtxo is not None else None

    def settle_batch(
        self,
        commitment_txid: str,
        commitment_hex: str,
        created: Sequence[tuple[str, int, bytes, int]],
        settled: Sequence[tuple[str, str]],
        expires_at: int,
    ) -> list[SimVtxo]:
        """A batch made it on chain: its tree leaves' outputs ``created`` (txid, vout,
        script, sats) become VTXOs, and the VTXOs it ``settled`` ((outpoint, forfeit txid or
        "") are spent, settled by the commitment tx. Refuses (changing nothing) if one of
        them was spent meanwhile."""
        now = int(self.clock())
        with self._lock:
            for outpoint, _ in settled:
                vtxo = self._vtxos.get(outpoint)
                if vtxo is None or vtxo.spent or vtxo.pending:
                    raise code.VTXO_ALREADY_SPENT(
                        f"input {outpoint} already spent", vtxo_outpoint=outpoint
                    )
            spent: list[SimVtxo] = []
            for outpoint, forfeit_txid in settled:
                vtxo = self._vtxos[outpoint]
                self._mark_spent(vtxo)
                vtxo.spent_by = forfeit_txid
                vtxo.settled_by = commitment_txid
                vtxo.updated_at = self._now_ms()
                spent.append(vtxo.copy())
            fresh = []
            for txid, vout, script, amount in created:
                vtxo = SimVtxo(
                    txid=txid,
                    vout=vout,
                    amount=amount,
                    script=script.hex(),
                    created_at=now,
                    expires_at=expires_at,
                    commitment_txids=[commitment_txid],
                )
                self._put(vtxo)
                fresh.append(vtxo.copy())
            self.batches += 1
            self._save(Change(vtxos=[*spent, *fresh], batches=self.batches))
            self._publish(
                SimTxEvent(
                    "commitment_tx", commitment_txid, commitment_hex, tuple(spent), tuple(fresh)
                )
            )
            return fresh

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
                index = self._unspent_by_script if spendable_only else self._by_script
                found = [
                    self._vtxos[o]
                    for script in dict.fromkeys(s.lower() for s in scripts)
                    for o in index.get(script, ())
                ]
                if spendable_only:
                    found = [v for v in found if not v.spent and not recoverable(v, now)]
                elif spent_only:
                    found = [v for v in found if v.spent]
                elif pending_only:
                    found = [v for v in found if v.pending]
            return [v.copy() for v in sorted(found, key=lambda v: (v.created_at, v.outpoint))]

    def is_expired(self, vtxo: SimVtxo) -> bool:
        return recoverable(vtxo, int(self.clock()))

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
        checkpoints, by_vtxo = rules.parse_checkpoints(checkpoint_txs)

        with self._lock:
            if txid in self._pending or txid in self._finalized:
                raise code.INVALID_ARK_PSBT(f"duplicated offchain tx {txid}", tx=signed_ark_tx)
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
            registered = self.registered(list(by_vtxo))
            if registered is not None:
                raise code.VTXO_ALREADY_REGISTERED(
                    f"{registered} already registered", vtxo_outpoint=registered
                )
            spends, expires_at = rules.check_inputs(
                ark,
                checkpoints,
                self._vtxos,
                now=int(self.clock()),
                exit_delay=self.unilateral_exit_delay,
                signer=self.signer_xonly,
                block_type_allowed=self.block_type_allowed,
            )
            outputs = rules.check_outputs(
                ark,
                dust=self.dust,
                vtxo_min_amount=self.vtxo_min_amount,
                vtxo_max_amount=self.vtxo_max_amount,
                max_op_return_outputs=self.max_op_return_outputs,
            )
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
            rules.check_owner_signatures(ark, txid, self.signer_xonly)

            for i in range(len(ark.inputs)):
                arktx.sign_input(ark, i, self._signer_secret)
            signed_checkpoints: dict[str, str] = {}
            for cp in rebuilt.checkpoints:
                arktx.sign_input(cp, 0, self._signer_secret)
                signed_checkpoints[arktx.txid(cp)] = arktx.encode_psbt(cp)
            spent = [arktx.input_outpoint(cp, 0) for cp in rebuilt.checkpoints]
            locked: list[SimVtxo] = []
            for cp in rebuilt.checkpoints:
                vtxo = self._vtxos[arktx.input_outpoint(cp, 0)]
                self._mark_spent(vtxo)
                vtxo.pending = True
                vtxo.spent_by, vtxo.ark_txid = arktx.txid(cp), txid
                vtxo.updated_at = self._now_ms()
                locked.append(vtxo)
            final = arktx.encode_psbt(ark)
            pending = PendingTx(txid, final, signed_checkpoints, spent, expires_at)
            self._pending[txid] = pending
            entry = journal_entry(
                txid,
                signed_ark_tx,
                checkpoint_txs,
                spends,
                outputs,
                checkpoint_tapscript=self.checkpoint_tapscript,
                signer=self.signer_xonly,
                accepted_at=int(self.clock()),
            )
            self._journal.append(entry)
            self._save(Change(vtxos=locked, pending=[pending], journal=[entry]))
            log.info("sim: accepted ark tx %s spending %s", txid, ", ".join(spent))
            return txid, final, list(signed_checkpoints.values())

    def finalize(self, ark_txid: str, final_checkpoint_txs: Sequence[str]) -> None:
        with self._lock:
            if ark_txid in self._finalized:
                return
            pending = self._pending.get(ark_txid)
            if pending is None:
                raise code.TX_NOT_FOUND(f"offchain tx {ark_txid} not found", txid=ark_txid)
            final = rules.check_final_checkpoints(
                ark_txid, final_checkpoint_txs, pending.signed_checkpoints
            )

            ark = arktx.decode_psbt(pending.final_ark_tx)
            now = int(self.clock())
            spent: list[SimVtxo] = []
            # As arkd (application/utils.go): an ark tx's outputs name the commitment txs
            # their inputs rest on.
            roots: dict[str, None] = {}
            for outpoint in pending.spent:
                vtxo = self._vtxos[outpoint]
                vtxo.pending = False
                vtxo.updated_at = self._now_ms()
                spent.append(vtxo.copy())
                roots.update(dict.fromkeys(vtxo.commitment_txids))
            created: list[SimVtxo] = []
            for out in arktx.vtxo_outputs(ark):
                vtxo = SimVtxo(
                    txid=ark_txid,
                    vout=out.index,
                    amount=out.amount,
                    script=out.script.hex(),
                    created_at=now,
                    expires_at=pending.expires_at,
                    commitment_txids=list(roots),
                    preconfirmed=True,
                    # arkd marks a sub-dust VTXO swept at once: an OP_RETURN output can be
                    # neither spent offchain nor exited, only settled with others in a batch.
                    swept=out.sub_dust,
                )
                self._put(vtxo)
                created.append(vtxo.copy())
            del self._pending[ark_txid]
            self._finalized.add(ark_txid)
            self._save(Change(vtxos=[*spent, *created], finalized=[ark_txid]))
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

    def pending_spent(self, outpoints: Sequence[str]) -> list[tuple[SimVtxo, PendingAnswer]]:
        """arkd's GetPendingSpentVtxosWithOutpoints: of ``outpoints``, the VTXOs spent by a
        submitted ark tx not yet finalized, newest first, each with that tx's answer."""
        with self._lock:
            found = []
            for outpoint in outpoints:
                vtxo = self._vtxos.get(outpoint)
                pending = self._pending.get(vtxo.ark_txid) if vtxo is not None else None
                if vtxo is None or not vtxo.pending or pending is None:
                    continue
                answer = PendingAnswer(
                    pending.ark_txid,
                    pending.final_ark_tx,
                    list(pending.signed_checkpoints.values()),
                )
                found.append((vtxo.copy(), answer))
        return sorted(found, key=lambda item: -item[0].created_at)

    def journal(self) -> list[JournalEntry]:
        """Every offchain tx accepted, oldest first, as submitted and as understood."""
        with self._lock:
            return list(self._journal)

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

    def observe(self, observer: Callable[[SimTxEvent], None]) -> None:
        """Call ``observer`` with every transaction event, under the ledger's lock (so in
        order, and before any stream sees it); it must be quick and must not block."""
        with self._lock:
            self._observers.append(observer)

    def _publish(self, event: SimTxEvent) -> None:
        for observer in self._observers:
            observer(event)
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
