"""Recovering SubmitTx's answer when the gateway never heard it (issue #17, defect 3).

arkd refuses the same transaction twice, so once a SubmitTx may have been accepted
(the inputs are found locked by the session's own ark txid, or the call timed out or its
connection dropped) the gateway never submits again. It asks the author for an ownership
proof of the session's inputs (arkd's GetPendingTx, message type ``get-pending-tx``):
extra ``sign_tx`` steps with ``tx_role = "intent_proof"``, numbered after the session's
own steps (``step_total + 1`` …, each challenge's ``step_total`` counting them), so their
`d` tags never collide with a normal step's. With the proof signed, GetPendingTx gives
SubmitTx's answer back and the session goes on exactly as if SubmitTx had answered.

While recovering the session counts as submitted (PROTOCOL.md §3): a bad proof signature
is challenged again, never a failure; at the session's deadline it ends with 3002 telling
the wallet to finalize through GetPendingTx itself.

For a batch the leader (first leg) recovers: its author proves its own inputs of the ark
transaction, which is enough for GetPendingTx to return the whole transaction.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import BackendUnavailable, ProtocolViolation
from ..interfaces import InputSignature, OwnershipProof, SubmittedTx
from ..outbox import enqueue
from ..protocol import SessionState
from ..store.models import Challenge as ChallengeRow
from .challenges import emit_challenge
from .finalize import finalized_elsewhere
from .ports import Driver, Ports
from .proofs import PROOF_LIFETIME
from .records import Transition, signatures
from .spend import Coloured
from .state import Held, Snap, lock_snapshot
from .steps import hand_over

__all__ = ["Recovery"]

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, ports: Ports, driver: Driver) -> None:
        self.ports = ports
        self.driver = driver

    async def locked(self, spend: dict[str, Any]) -> list[str]:
        """The session's inputs the Ark server holds as spent by its own ark tx."""
        ids = [c["vtxo_id"] for c in spend["inputs"]]
        return [
            v.vtxo_id
            for v in await self.ports.ark_backend.get_vtxos(ids)
            if v.status != "spendable" and spend["ark_txid"] in (v.ark_txid, v.spent_by)
        ]

    async def start(self, snap: Snap, spend: dict[str, Any]) -> Held:
        """Build an ownership proof of the leader's inputs and challenge its author."""
        backend = self.ports.ark_backend
        author = snap.author
        # As recorded when the spend was built: the proof proves the scripts it spent.
        vtxos = [
            msgspec.convert(c, Coloured).vtxo() for c in spend["inputs"] if c["owner"] == author
        ]
        expire_at = int(min(time.time() + PROOF_LIFETIME, snap.expires_at))
        proof: OwnershipProof = await backend.build_ownership_proof(vtxos, expire_at=expire_at)
        log.warning(
            "session %s: ark tx %s was accepted unheard; asking %s for an ownership proof",
            snap.id,
            spend["ark_txid"],
            author,
        )

        def run(db: Session) -> tuple[list[Transition], Held]:
            row = lock_snapshot(db, snap)
            if row is None or row.state != SessionState.ARK_TX_PREPARED:
                return [], None
            now = time.time()
            # A proof built before (expired) leaves its challenges: this one replaces them.
            db.execute(
                sa.delete(ChallengeRow).where(
                    ChallengeRow.session_id == row.id, ChallengeRow.step_index > row.step_total
                )
            )
            ctx = {k: v for k, v in row.context.items() if k != "phase"}
            ctx["recovery"] = {"proof": msgspec.to_builtins(proof)}
            row.context = ctx
            event = emit_challenge(self.ports, db, row, row.step_total + 1, now)
            enqueue(db, event, now=now)
            row.updated_at = int(now)
            return [], hand_over(self.ports, db, row, now)

        self.ports.stats["recovery_proofs"] += 1
        return self.ports.handed(await self.ports.run(run))

    async def fetch(self, snap: Snap, spend: dict[str, Any]) -> SubmittedTx | Held:
        """The proof is signed: GetPendingTx. SubmitTx's answer, or what was done instead
        (None: nothing more now)."""
        backend = self.ports.ark_backend
        ctx = snap.context
        proof = msgspec.convert(ctx["recovery"]["proof"], OwnershipProof)
        if proof.expire_at <= time.time() + 5:
            return await self.start(snap, spend)
        answers = await self.ports.run(signatures, snap.id)
        total = snap.step_total
        sigs = [
            InputSignature(t.input_index, t.owner, answers[total + k])
            for k, t in enumerate(proof.to_sign, start=1)
        ]
        try:
            signed = backend.add_proof_signatures(proof, sigs)
        except ProtocolViolation as exc:  # checked when recorded: only a changed proof
            log.warning("session %s: proof signatures refused (%s); new proof", snap.id, exc)
            return await self.start(snap, spend)
        ark_txid = spend["ark_txid"]
        try:
            pendings = await backend.get_pending_txs(signed, proof.message)
        except ProtocolViolation as exc:  # the Ark server refused the proof (expired…)
            log.warning("session %s: GetPendingTx refused the proof (%s); new proof", snap.id, exc)
            return await self.start(snap, spend)
        for pending in pendings:
            if pending.ark_txid == ark_txid:
                return pending
        # Not pending any more: finalized meanwhile (the wallet did it), or dropped.
        if await backend.get_vtxos([f"{ark_txid}:0"]):
            log.warning("session %s: ark tx %s was finalized without us", snap.id, ark_txid)
            return await finalized_elsewhere(self.ports, snap, spend)
        if await self.locked(spend):
            raise BackendUnavailable(
                f"the Ark server holds the inputs of {ark_txid} but lists no pending tx",
                code=ErrorCode.ARK_UNAVAILABLE,
            )
        await self.driver.fail(
            snap.id,
            ErrorCode.ARK_UNAVAILABLE,
            f"the Ark server dropped ark tx {ark_txid} unfinalized; the inputs are free again",
        )
        return None
