"""The batch protocol: intents queue up, a batch runs, its commitment tx lands on the chain.

arkd v0.9.15's round loop (application/service.go ``startRound`` → ``startConfirmation`` →
``startFinalization`` → ``finalizeRound``; timings in round_timing.go), run by one thread
the simulator owns:

1. registration: once intents are queued, wait a sixth of the session, take them all;
2. confirmation: BatchStarted (the sha256 of each intent id); each intent's owner calls
   ConfirmRegistration; the batch goes on when all did or half the remaining session
   passed, with the confirmed ones (the others go back to the queue);
3. tree signing: the commitment tx and VTXO tree are built; TreeTx events, then
   TreeSigningStarted; every cosigner's nonces (TreeNonces per tx, TreeNoncesAggregated),
   then its partial signatures; each wait a third of the remaining session;
4. finalization: TreeSignature events, the connector tree, BatchFinalization; the owners
   send forfeit txs (VTXO inputs) and their boarding-input signatures until the session
   ends; the server signs, broadcasts, records the VTXOs; BatchFinalized.

A failure publishes BatchFailed; the intents of whoever caused it are dropped (arkd bans
them), the others wait for the next batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence

import coincurve

from . import batchevents as ev
from . import intentcheck
from .commitment import BatchTxs, LeafSignatures, build_batch, finalize_commitment, needs_forfeit
from .errors import ArkdError, code
from .esplora import Chain, ChainError
from .eventbus import EventBus
from .forfeits import Forfeit, check_boarding_signatures, check_forfeit, check_forfeit_signatures
from .intents import Intent, Settings, check_register, check_time_range, parse_register
from .ledger import Ledger
from .treesign import Coordinator, SigningRefused
from .txtree import sweep_root
from .vtxos import SimVtxo, recoverable
from .wallet import InsufficientFunds, ServerWallet, wallet_address

__all__ = ["ARKD_SESSION_DURATION", "BatchConfig", "BatchEngine"]

log = logging.getLogger(__name__)

#: arkd's default session duration (ARKD_SESSION_DURATION, internal/config/config.go).
ARKD_SESSION_DURATION = 30.0
#: arkd's default VTXO tree expiry in seconds (ARKD_VTXO_TREE_EXPIRY, 7 days, a multiple of 512).
ARKD_VTXO_TREE_EXPIRY = 604672


@dataclasses.dataclass(frozen=True)
class BatchConfig:
    #: Seconds from a batch's start to its end; the simulator's default is shorter than
    #: arkd's 30 s so tests and demos do not wait, and every stage moves on as soon as
    #: everyone answered.
    session_duration: float = 10.0
    vtxo_tree_expiry: int = ARKD_VTXO_TREE_EXPIRY
    #: sat/vB for commitment txs; None asks the chain.
    fee_rate: float | None = None


@dataclasses.dataclass
class _Round:
    id: str
    intents: list[Intent]
    ends_at: float
    stage: str = "confirmation"
    confirmed: set[str] = dataclasses.field(default_factory=set)
    txs: BatchTxs | None = None
    coordinator: Coordinator | None = None
    to_forfeit: dict[str, SimVtxo] = dataclasses.field(default_factory=dict)
    connectors: dict[str, tuple[bytes, int]] = dataclasses.field(default_factory=dict)
    forfeits: dict[str, Forfeit] = dataclasses.field(default_factory=dict)
    boarding_sigs: dict[int, LeafSignatures] = dataclasses.field(default_factory=dict)
    broadcast: bool = False
    #: x-only hex -> (pubkey, {txid: partial signature}), checked once all are in
    pending_sigs: dict[str, tuple[bytes, dict[str, bytes]]] = dataclasses.field(
        default_factory=dict
    )

    def remaining(self) -> float:
        return max(0.0, self.ends_at - time.monotonic())


class _Failed(Exception):
    def __init__(self, reason: str, culprits: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.culprits = set(culprits)  # intent ids


class BatchEngine:
    """Intents, the running batch and its event stream. Thread-safe: RPCs call in from
    gRPC worker threads while the batch thread waits on the same condition."""

    def __init__(self, ledger: Ledger, chain: Chain | None, config: BatchConfig | None = None):
        self.ledger = ledger
        self.chain = chain
        # The tree expiry is the ledger's (ARKD_VTXO_TREE_EXPIRY) unless a config says.
        self.config = config or BatchConfig(vtxo_tree_expiry=int(ledger.vtxo_lifetime))
        self.events = EventBus()
        secret = hashlib.sha256(b"arkrelay-sim-wallet" + ledger.signer_secret).digest()
        self.wallet = ServerWallet(secret, chain, ledger.network) if chain is not None else None
        self.forfeit_address = wallet_address(secret, ledger.network)
        self.signer_key = coincurve.PrivateKey(ledger.signer_secret).public_key.format()
        self.sweep_root = sweep_root(ledger.forfeit_xonly, self.config.vtxo_tree_expiry)
        self._cond = threading.Condition()
        self._queue: list[Intent] = []
        self._round: _Round | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        ledger.registered = self._registered

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="arkd-sim-batches", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.events.close_all()

    def fund_wallet(self, amount: int) -> tuple[str, int]:
        if self.wallet is None:
            raise RuntimeError("the simulator has no chain: start it with an Esplora URL")
        return self.wallet.fund(amount)

    def settings(self) -> Settings:
        info = self.ledger.info()
        return Settings(
            signer_xonly=self.ledger.signer_xonly,
            boarding_exit_delay=int(info["boarding_exit_delay"]),  # type: ignore[arg-type]
            dust=self.ledger.dust,
            utxo_min_amount=self.ledger.utxo_min_amount,
            network=self.ledger.network,
            clock=self.ledger.clock,
        )

    # ------------------------------------------------------------------ RPCs

    def register(self, proof: str, message: str) -> str:
        intent = check_register(
            proof,
            message,
            settings=self.settings(),
            find_vtxo=self.ledger.find_vtxo,
            chain=self.chain,
        )
        with self._cond:
            taken = {o for i in self._all_intents() for o in i.outpoints}
            for outpoint in intent.outpoints:
                if outpoint in taken:
                    raise code.INTERNAL_ERROR(
                        f"failed to push intent: duplicated input, {outpoint} already "
                        "registered by another intent"
                    )
            self._queue.append(intent)
            self._cond.notify_all()
        log.info("sim: intent %s registered (%s)", intent.id, ", ".join(intent.outpoints))
        return intent.id

    def _registered(self, outpoints: Sequence[str]) -> str | None:
        """The first of ``outpoints`` a queued or running intent holds."""
        with self._cond:
            held = {o for i in self._all_intents() for o in i.outpoints}
        return next((o for o in outpoints if o in held), None)

    def _all_intents(self) -> list[Intent]:
        running = self._round.intents if self._round is not None else []
        return [*self._queue, *running]

    def delete(self, proof: str, message: str) -> None:
        outpoints = self._proven_outpoints(proof, message, "delete")
        with self._cond:
            keep = [i for i in self._queue if not outpoints & set(i.outpoints)]
            if len(keep) == len(self._queue):
                raise code.INVALID_INTENT_PROOF("no matching intents found for intent proof")
            self._queue = keep

    def find(self, *, txid: str = "", proof: str = "", message: str = "") -> list[Intent]:
        """GetIntent: the queued intents whose proof has ``txid``, or that spend what a
        ``get-intent`` proof proves."""
        with self._cond:
            intents = self._all_intents()
        if txid:
            return [i for i in intents if i.proof_txid == txid]
        outpoints = self._proven_outpoints(proof, message, "get-intent")
        return [i for i in intents if outpoints & set(i.outpoints)]

    def _proven_outpoints(self, proof: str, message: str, kind: str) -> set[str]:
        try:
            doc = json.loads(message)
            expire_at = int(doc.get("expire_at") or 0)
            if doc.get("type") != kind:
                raise ValueError(f"invalid intent message type: {doc.get('type')}")
        except (ValueError, TypeError, AttributeError) as exc:
            raise code.INVALID_INTENT_MESSAGE(f"failed to parse message: {exc}") from exc
        encoded = json.dumps({"type": kind, "expire_at": expire_at}, separators=(",", ":"))
        now = int(self.ledger.clock())
        if expire_at > 0 and now > expire_at:
            raise code.INVALID_INTENT_TIMERANGE("proof of ownership expired")
        try:
            intentcheck.verify(proof, encoded, skip=[self.ledger.signer_xonly])
            psbt = intentcheck.parse(proof)
        except intentcheck.ProofRefused as exc:
            raise code.INVALID_INTENT_PROOF(f"invalid intent proof: {exc}") from exc
        return {f"{i.txid.hex()}:{i.vout}" for i in psbt.inputs[1:]}

    def confirm(self, intent_id: str) -> None:
        with self._cond:
            round_ = self._round
            if round_ is None or round_.stage != "confirmation":
                raise code.CONFIRMATION_SESSION_NOT_STARTED("confirmation session not started")
            if intent_id not in {i.id for i in round_.intents}:
                raise code.INTERNAL_ERROR(
                    f"failed to confirm intent: intent {intent_id} not found",
                    intent_id=intent_id,
                )
            round_.confirmed.add(intent_id)
            self._cond.notify_all()

    def _current(self, batch_id: str, stage: str) -> _Round:
        round_ = self._round
        if round_ is None or round_.id != batch_id:
            raise code.INTERNAL_ERROR(f"batch {batch_id} is not running", round_id=batch_id)
        if round_.stage != stage:
            raise code.INTERNAL_ERROR(f"batch {batch_id} is not collecting {stage}")
        return round_

    def submit_nonces(self, batch_id: str, pubkey: bytes, nonces: dict[str, bytes]) -> None:
        with self._cond:
            round_ = self._current(batch_id, "nonces")
            assert round_.coordinator is not None
            if pubkey[1:] == self.signer_key[1:]:
                raise code.INTERNAL_ERROR("failed to add nonces: the server's key is not yours")
            try:
                round_.coordinator.add_nonces(pubkey, nonces)
            except SigningRefused as exc:
                raise code.INTERNAL_ERROR(f"failed to add nonces: {exc}") from exc
            self._cond.notify_all()

    def submit_signatures(self, batch_id: str, pubkey: bytes, sigs: dict[str, bytes]) -> None:
        with self._cond:
            round_ = self._current(batch_id, "signatures")
            assert round_.coordinator is not None
            signer = pubkey[-32:].hex()
            if signer not in round_.coordinator.signers():
                raise code.INTERNAL_ERROR(f"failed to add signatures: {signer} is not a cosigner")
            # Checked when all are in, as arkd does: a bad one fails the batch.
            round_.pending_sigs[signer] = (pubkey, sigs)
            self._cond.notify_all()

    def submit_forfeits(self, forfeit_txs: Sequence[str], signed_commitment: str) -> None:
        with self._cond:
            round_ = self._round
            if round_ is None or round_.stage != "finalization" or round_.txs is None:
                raise code.INTERNAL_ERROR("something went wrong: no batch is finalizing")
            if forfeit_txs:
                if not round_.to_forfeit:
                    raise code.INVALID_FORFEIT_TXS(
                        "failed to sign forfeit txs: forfeit txs map not initialized"
                    )
                forfeit_script = self.wallet.pk_script  # type: ignore[union-attr]
                checked = [
                    check_forfeit(
                        tx, round_.to_forfeit, round_.connectors, forfeit_script, self.ledger.dust
                    )
                    for tx in forfeit_txs
                ]
                for forfeit in checked:
                    round_.forfeits[forfeit.vtxo.outpoint] = forfeit
            if signed_commitment:
                boarding = {b.outpoint: b for i in round_.intents for b in i.boarding}
                round_.boarding_sigs.update(
                    check_boarding_signatures(
                        signed_commitment, round_.txs, boarding, self.ledger.signer_xonly
                    )
                )
            self._cond.notify_all()

    # ------------------------------------------------------------------ the batch thread

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._stop.is_set(), 1.0)
                if not self._queue:
                    continue
            # arkd counts the registration stage in the session: a sixth of it.
            started = time.monotonic()
            if self._stop.wait(self.config.session_duration / 6):
                return
            self._run_batch(started)

    def _wait(self, round_: _Round, done: Callable[[], bool], share: float) -> bool:
        """Wait (holding the condition) until ``done`` or ``share`` of the remaining
        session passed; whether ``done``."""
        limit = round_.remaining() * share
        return self._cond.wait_for(lambda: done() or self._stop.is_set(), limit) and done()

    def _run_batch(self, started: float) -> None:
        with self._cond:
            queued, self._queue = self._queue, []
            round_ = _Round(str(uuid.uuid4()), queued, started + self.config.session_duration)
            self._round = round_
        # arkd leaves out the intents whose boarding coin was spent meanwhile, silently;
        # their wallets would wait for a batch forever (the SDK holding its wallet lock),
        # so the simulator tells them with BatchFailed on their coins' topics.
        stale = [i for i in queued if self._boarding_spent(i)]
        intents = [i for i in queued if i not in stale]
        for intent in stale:
            spent = ", ".join(b.outpoint for b in intent.boarding)
            self._publish(
                [
                    ev.batch_failed(
                        round_.id, f"boarding input already spent: {spent}", intent.outpoints
                    )
                ]
            )
        with self._cond:
            round_.intents = intents
            if not intents:
                self._round = None
                return
        log.info("sim: batch %s started with %d intents", round_.id, len(intents))
        try:
            hashes = [i.hash_id for i in intents]
            self._publish([ev.batch_started(round_.id, hashes, self.config.vtxo_tree_expiry)])
            self._confirmation(round_)
            self._build(round_)
            if round_.txs is not None and round_.txs.vtxo_tree is not None:
                self._sign_tree(round_)
            self._finalize(round_)
        except _Failed as failed:
            self._fail(round_, failed)
        except Exception as exc:
            # A bug must not leave wallets waiting forever nor stop later batches: the
            # batch fails (its intents are kept) and the traceback goes to the log.
            log.exception("sim: batch %s crashed", round_.id)
            self._fail(round_, _Failed(f"internal error: {exc}"))
        finally:
            with self._cond:
                if self.wallet is not None and round_.txs is not None and not round_.broadcast:
                    self.wallet.release(round_.txs.wallet_inputs)
                self._round = None

    def _boarding_spent(self, intent: Intent) -> bool:
        if self.chain is None:
            return False
        for b in intent.boarding:
            try:
                if self.chain.is_spent(b.txid, b.vout):
                    return True
            except ChainError as exc:
                log.warning("sim: cannot check boarding input %s: %s", b.outpoint, exc)
        return False

    def _confirmation(self, round_: _Round) -> None:
        with self._cond:
            everyone = {i.id for i in round_.intents}
            self._wait(round_, lambda: round_.confirmed >= everyone, 0.5)
            confirmed = [i for i in round_.intents if i.id in round_.confirmed]
            late = [i for i in round_.intents if i.id not in round_.confirmed]
            self._queue.extend(late)
            round_.intents = confirmed
            round_.stage = "building"
        if not confirmed:
            raise _Failed("not enough intent confirmations received")

    def _build(self, round_: _Round) -> None:
        if self.wallet is None or self.chain is None:
            raise _Failed("the simulator has no chain: it cannot fund a commitment tx")
        now = int(self.ledger.clock())
        dust = self.ledger.dust
        to_forfeit = {}
        for intent in round_.intents:
            for vtxo in intent.vtxos:
                if needs_forfeit(vtxo.amount, vtxo.swept, recoverable(vtxo, now), dust):
                    to_forfeit[vtxo.outpoint] = vtxo
        try:
            fee_rate = self.config.fee_rate or self.chain.fee_rate()
            txs = build_batch(
                round_.intents,
                signer_key=self.signer_key,
                sweep_root=self.sweep_root,
                vtxo_tree_expiry=self.config.vtxo_tree_expiry,
                connectors=len(to_forfeit),
                wallet=self.wallet,
                dust=dust,
                fee_rate=fee_rate,
            )
        except (InsufficientFunds, ChainError, ValueError) as exc:
            raise _Failed(f"failed to create commitment tx: {exc}") from exc
        with self._cond:
            round_.txs = txs
            round_.to_forfeit = to_forfeit
            if txs.connector_tree is not None:
                for leaf in txs.connector_tree.leaves():
                    out = leaf.psbt.tx.vout[0]
                    round_.connectors[f"{leaf.txid}:0"] = (out.script_pubkey.data, out.value)

    def _sign_tree(self, round_: _Round) -> None:
        txs = round_.txs
        assert txs is not None and txs.vtxo_tree is not None and txs.batch_output is not None
        coordinator = Coordinator(
            txs.vtxo_tree,
            self.sweep_root,
            txs.batch_output,
            self.ledger.signer_secret,
            self.signer_key,
        )
        cosigners = sorted({k.hex() for i in round_.intents for k in i.cosigners})
        events = ev.tree_txs(round_.id, txs.vtxo_tree, 0, ev.cosigner_topics)
        events.append(ev.tree_signing_started(round_.id, cosigners, txs.commitment.to_string()))
        with self._cond:
            round_.coordinator = coordinator
            round_.stage = "nonces"
        self._publish(events)

        with self._cond:
            if not self._wait(round_, coordinator.has_all_nonces, 1 / 3):
                missing = coordinator.signers() - set(coordinator.nonces)
                raise _Failed(
                    "musig2 signing session timed out (nonce collection), collected "
                    f"{len(coordinator.nonces) - 1}/{len(coordinator.signers()) - 1} nonces",
                    self._intents_of(round_, missing),
                )
            try:
                aggregated = coordinator.aggregate_nonces()
            except SigningRefused as exc:
                raise _Failed(str(exc), self._intents_of(round_, {exc.signer})) from exc
            round_.stage = "signatures"
        nonce_events = ev.tree_nonces(
            round_.id, txs.vtxo_tree, coordinator.nonces_of_tx, aggregated
        )
        self._publish(nonce_events)
        coordinator.sign_as_server()

        with self._cond:
            everyone = coordinator.signers() - {self.signer_key[1:].hex()}
            if not self._wait(round_, lambda: set(round_.pending_sigs) >= everyone, 0.5):
                missing = everyone - set(round_.pending_sigs)
                raise _Failed(
                    "musig2 signing session timed out (signatures collection), collected "
                    f"{len(round_.pending_sigs)}/{len(everyone)} signatures",
                    self._intents_of(round_, missing),
                )
            bad = set()
            for signer, (pubkey, sigs) in round_.pending_sigs.items():
                try:
                    coordinator.add_signatures(pubkey, sigs)
                except SigningRefused as exc:
                    log.info("sim: %s", exc)
                    bad.add(signer)
            if bad:
                raise _Failed("some musig2 signatures are invalid", self._intents_of(round_, bad))
            coordinator.signed_tree()
            round_.stage = "finalization"

    def _intents_of(self, round_: _Round, signers: set[str]) -> list[str]:
        return [i.id for i in round_.intents if {k[1:].hex() for k in i.cosigners} & signers]

    def _finalize(self, round_: _Round) -> None:
        txs = round_.txs
        assert txs is not None and self.wallet is not None and self.chain is not None
        events: list[ev.Event] = []
        if txs.vtxo_tree is not None:
            events.extend(ev.tree_signatures(round_.id, txs.vtxo_tree))
        if txs.connector_tree is not None:
            forfeited = sorted(round_.to_forfeit)
            events.extend(ev.tree_txs(round_.id, txs.connector_tree, 1, lambda _: forfeited))
        events.append(ev.batch_finalization(round_.id, txs.commitment.to_string()))
        with self._cond:
            round_.stage = "finalization"
        self._publish(events)

        boarding_inputs = set(txs.boarding_index.values())
        with self._cond:
            self._wait(
                round_,
                lambda: (
                    set(round_.forfeits) >= set(round_.to_forfeit)
                    and set(round_.boarding_sigs) >= boarding_inputs
                ),
                1.0,
            )
            round_.stage = "broadcasting"
            missing_forfeits = set(round_.to_forfeit) - set(round_.forfeits)
            missing_boarding = boarding_inputs - set(round_.boarding_sigs)
        if missing_forfeits:
            raise _Failed("missing forfeit transactions", self._spenders(round_, missing_forfeits))
        if missing_boarding:
            by_index = {v: k for k, v in txs.boarding_index.items()}
            raise _Failed(
                "missing boarding inputs signatures",
                self._spenders(round_, {by_index[i] for i in missing_boarding}),
            )
        bad = {
            outpoint
            for outpoint, forfeit in round_.forfeits.items()
            if check_forfeit_signatures(forfeit, self.ledger.signer_xonly) is not None
        }
        if bad:
            raise _Failed("invalid forfeit txs signature", self._spenders(round_, bad))

        final = finalize_commitment(
            txs, round_.boarding_sigs, self.wallet, self.ledger.signer_secret
        )
        raw = final.serialize().hex()
        try:
            self.chain.broadcast(raw)
        except ChainError as exc:
            raise _Failed(f"failed to broadcast commitment tx: {exc}") from exc
        round_.broadcast = True
        created = []
        if txs.vtxo_tree is not None:
            for leaf in txs.vtxo_tree.leaves():
                for vout, out in enumerate(leaf.psbt.tx.vout):
                    if out.script_pubkey.data == b"\x51\x02\x4e\x73":
                        continue
                    created.append((leaf.txid, vout, out.script_pubkey.data, out.value))
        settled = [
            (v.outpoint, round_.forfeits[v.outpoint].txid if v.outpoint in round_.forfeits else "")
            for i in round_.intents
            for v in i.vtxos
        ]
        expires_at = int(self.ledger.clock()) + self.config.vtxo_tree_expiry
        try:
            self.ledger.settle_batch(txs.txid, raw, created, settled, expires_at)
        except ArkdError as exc:
            # The tx is on the chain already; this only happens if a VTXO was spent
            # offchain between registration and now, which arkd prevents by locking.
            log.error("sim: batch %s broadcast but not recorded: %s", round_.id, exc.message)
            raise _Failed(exc.message) from exc
        log.info("sim: batch %s finalized: commitment tx %s", round_.id, txs.txid)
        self._publish([ev.batch_finalized(round_.id, txs.txid)])

    def _spenders(self, round_: _Round, outpoints: set[str]) -> list[str]:
        return [i.id for i in round_.intents if outpoints & set(i.outpoints)]

    def _fail(self, round_: _Round, failed: _Failed) -> None:
        log.info("sim: batch %s failed: %s", round_.id, failed.reason)
        with self._cond:
            keep = [i for i in round_.intents if i.id not in failed.culprits]
            now = int(self.ledger.clock())
            for intent in keep:
                try:
                    check_time_range(parse_register(intent.message), now)
                except ArkdError:
                    continue
                self._queue.append(intent)
        coins = sorted({o for i in round_.intents for o in i.outpoints})
        self._publish([ev.batch_failed(round_.id, failed.reason, coins)])

    def _publish(self, events: Sequence[ev.Event]) -> None:
        self.events.publish(events)
