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
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import BackendUnavailable, ProtocolViolation
from ..interfaces import InputSignature, InputToSign, OwnershipProof, SubmittedTx
from ..outbox import enqueue
from ..protocol import SessionState
from ..store.models import Challenge as ChallengeRow
from .records import Transition, lock_snapshot, signatures
from .spend import Coloured

if TYPE_CHECKING:
    from .ark import ArkSteps, Held

__all__ = ["PROOF_LIFETIME", "Recovery", "proof_steps", "recovering"]

log = logging.getLogger(__name__)

#: Seconds an ownership proof may be used at arkd: enough to collect its signatures (a
#: proof that expires first is built and signed again), short enough to be worthless soon.
PROOF_LIFETIME = 300


def recovering(context: dict[str, Any]) -> bool:
    """Whether a SubmitTx of this session may have been accepted without its answer."""
    return "recovery" in context


def proof_steps(context: dict[str, Any]) -> int:
    """How many proof challenges the session's current recovery has (0: none yet)."""
    proof = (context.get("recovery") or {}).get("proof")
    return len(proof["to_sign"]) if proof else 0


def proof_item(context: dict[str, Any], step: int, step_total: int) -> InputToSign:
    proof = context["recovery"]["proof"]
    return msgspec.convert(proof["to_sign"][step - step_total - 1], InputToSign)


def proof_context(ark_txid: str, item: InputToSign) -> dict[str, Any]:
    """The ``context`` of a proof challenge: nothing moves, so no amount nor recipient."""
    what = "the message input" if not item.vtxo_id else f"your VTXO {item.vtxo_id}"
    return {
        "psbt": item.psbt,
        "input_index": item.input_index,
        "tx_role": "intent_proof",
        "human": (
            f"Prove to the Ark server that you own {what} (input {item.input_index} of an "
            f"ownership proof, message get-pending-tx) to recover ark tx {ark_txid}, which "
            "you already signed; this proof pays nothing and moves no funds"
        ),
        "amount": 0,
        "asset_id": "",
    }


def mark_unsure(db: Session, snap: dict[str, Any]) -> None:
    """SubmitTx may have taken effect unheard: from now on the session is never failed for
    it, and is never submitted again without checking (one transaction)."""
    row = lock_snapshot(db, snap)
    if row is None or row.state != SessionState.ARK_TX_PREPARED or recovering(row.context):
        return
    row.context = {**row.context, "recovery": {}}
    row.updated_at = int(time.time())


class Recovery:
    def __init__(self, ark: ArkSteps) -> None:
        self.ark = ark
        self.engine = ark.engine

    async def locked(self, spend: dict[str, Any]) -> list[str]:
        """The session's inputs the Ark server holds as spent by its own ark tx."""
        ids = [c["vtxo_id"] for c in spend["inputs"]]
        return [
            v.vtxo_id
            for v in await self.ark.backend.get_vtxos(ids)
            if v.status != "spendable" and spend["ark_txid"] in (v.ark_txid, v.spent_by)
        ]

    async def start(self, snap: dict[str, Any], spend: dict[str, Any]) -> Held:
        """Build an ownership proof of the leader's inputs and challenge its author."""
        backend = self.ark.backend
        author = snap["author"]
        # As recorded when the spend was built: the proof proves the scripts it spent.
        vtxos = [
            msgspec.convert(c, Coloured).vtxo() for c in spend["inputs"] if c["owner"] == author
        ]
        expire_at = int(min(time.time() + PROOF_LIFETIME, snap["expires_at"]))
        proof: OwnershipProof = await backend.build_ownership_proof(vtxos, expire_at=expire_at)
        log.warning(
            "session %s: ark tx %s was accepted unheard; asking %s for an ownership proof",
            snap["id"],
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
            event = self.ark.engine.flows.emit_challenge(db, row, row.step_total + 1, now)
            enqueue(db, event, now=now)
            row.updated_at = int(now)
            return [], self.engine.flows.hand_over(db, row, now)

        self.engine.stats["recovery_proofs"] += 1
        return self.ark._transitioned(await self.engine.store.run(run))

    async def fetch(self, snap: dict[str, Any], spend: dict[str, Any]) -> SubmittedTx | Held:
        """The proof is signed: GetPendingTx. SubmitTx's answer, or what was done instead
        (None: nothing more now)."""
        backend = self.ark.backend
        ctx = snap["context"]
        proof = msgspec.convert(ctx["recovery"]["proof"], OwnershipProof)
        if proof.expire_at <= time.time() + 5:
            return await self.start(snap, spend)
        answers = await self.engine.store.run(signatures, snap["id"])
        total = snap["step_total"]
        sigs = [
            InputSignature(t.input_index, t.owner, answers[total + k])
            for k, t in enumerate(proof.to_sign, start=1)
        ]
        try:
            signed = backend.add_proof_signatures(proof, sigs)
        except ProtocolViolation as exc:  # checked when recorded: only a changed proof
            log.warning("session %s: proof signatures refused (%s); new proof", snap["id"], exc)
            return await self.start(snap, spend)
        ark_txid = spend["ark_txid"]
        try:
            pendings = await backend.get_pending_txs(signed, proof.message)
        except ProtocolViolation as exc:  # the Ark server refused the proof (expired…)
            log.warning(
                "session %s: GetPendingTx refused the proof (%s); new proof", snap["id"], exc
            )
            return await self.start(snap, spend)
        for pending in pendings:
            if pending.ark_txid == ark_txid:
                return pending
        # Not pending any more: finalized meanwhile (the wallet did it), or dropped.
        if await backend.get_vtxos([f"{ark_txid}:0"]):
            log.warning("session %s: ark tx %s was finalized without us", snap["id"], ark_txid)
            return await self.ark.finalized_elsewhere(snap, spend)
        if await self.locked(spend):
            raise BackendUnavailable(
                f"the Ark server holds the inputs of {ark_txid} but lists no pending tx",
                code=ErrorCode.ARK_UNAVAILABLE,
            )
        await self.engine.flows.fail(
            snap["id"],
            ErrorCode.ARK_UNAVAILABLE,
            f"the Ark server dropped ark tx {ark_txid} unfinalized; the inputs are free again",
        )
        return None
