"""Atomic swap batches (``submit_batch``, PROTOCOL.md §4): verify every leg, open one
session per leg, all in one transaction; the legs then share one ark transaction."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError, ProtocolViolation
from ..nostr import Event, verify_event
from ..protocol import BatchAccepted, SessionState, SwapLegParams
from ..store.models import Batch
from .ark import ArkSteps
from .challenges import emit_challenge
from .intake import AcceptedIntent
from .opening import check, open_row
from .ports import Driver, Ports
from .records import Transition, add_unique, legs_of, lock_batch, move
from .spend import Coloured, Output
from .state import Snap, snapshot

if TYPE_CHECKING:
    from ..protocol import SubmitBatch

__all__ = ["open_batch", "prepare_batch", "prepare_batch_soon"]


async def open_batch(
    ports: Ports, event: Event, request: SubmitBatch, base: dict[str, Any]
) -> tuple[BatchAccepted, list[Transition]]:
    now = time.time()
    legs: list[AcceptedIntent] = []
    problems: list[str] = []
    for i, raw in enumerate(request.intents):
        try:
            leg_event = msgspec.convert(raw, Event)
        except msgspec.ValidationError as exc:
            problems.append(f"intent {i}: not an event ({exc})")
            continue
        if not verify_event(leg_event):
            problems.append(f"intent {i}: invalid id or signature")
            continue
        try:
            accepted = check(ports, leg_event, now)
        except ArkRelayError as exc:
            problems.append(f"intent {i}: {int(exc.code)} {exc}")
            legs.append(AcceptedIntent(leg_event, None, "", None, None, None))  # type: ignore[arg-type]
            continue
        legs.append(accepted)
    valid = [leg for leg in legs if leg.intent is not None]
    problems += _balance_problems(valid, request.batch_id) if not problems else []
    if problems:
        await _refuse_all(ports, legs, "; ".join(problems))
        raise ProtocolViolation(
            f"batch {request.batch_id} refused: {'; '.join(problems)}", code=ErrorCode.BATCH_INVALID
        )

    def run(db: Session) -> list[str]:
        add_unique(
            db,
            Batch(
                id=request.batch_id,
                submitter=event.pubkey,
                request_event_id=event.id,
                state="open",
                created_at=int(now),
                updated_at=int(now),
                context={},
            ),
            ProtocolViolation(
                f"batch_id {request.batch_id!r} was already used", code=ErrorCode.BATCH_INVALID
            ),
        )
        return [open_row(ports, db, leg, now, request.batch_id).id for leg in valid]

    session_ids = await ports.run(run)
    for leg in valid:
        ports.notify(ports.hook.arkrelay_intent_received, intent=leg.intent)
    return (
        BatchAccepted(
            **base,
            action="submit_batch",
            status="pending",
            batch_id=request.batch_id,
            session_ids=session_ids,
        ),
        [],
    )


def _balance_problems(legs: list[AcceptedIntent], batch_id: str) -> list[str]:
    problems = []
    authors = [leg.event.pubkey for leg in legs]
    if len(set(authors)) != len(authors):
        problems.append("each leg must come from a different party")
    received: dict[str, int] = defaultdict(int)  # party -> legs paying it
    for leg in legs:
        params = leg.params
        if leg.action_type != "ark:swap_leg" or not isinstance(params, SwapLegParams):
            problems.append(f"{leg.intent.action_id}: every leg must be ark:swap_leg")
            continue
        if params.batch_id != batch_id:
            problems.append(f"{leg.intent.action_id}: batch_id {params.batch_id!r} differs")
        if params.recipient_pubkey not in authors:
            problems.append(f"{leg.intent.action_id}: the recipient is not a party of the batch")
        received[params.recipient_pubkey] += 1
    for author in authors:
        if not received[author]:
            problems.append(f"party {author[:16]} receives nothing in return")
    return problems


async def _refuse_all(ports: Ports, legs: list[AcceptedIntent], message: str) -> None:
    for leg in legs:
        ref = leg.intent.action_id if leg.intent is not None else None
        await ports.peers.refuse(leg.event, ErrorCode.BATCH_INVALID, message, ref_id=ref)


async def prepare_batch_soon(ports: Ports, driver: Driver, batch_id: str) -> None:
    """Have the batch's first leg prepare every leg (see :func:`prepare_batch`)."""
    legs = await ports.run(lambda db: [r.id for r in legs_of(db, batch_id)])
    if legs:
        ports.spawn(driver.drive, legs[0])


async def prepare_batch(ports: Ports, driver: Driver, ark: ArkSteps, snap: Snap) -> None:
    """Plan every leg, build the one ark transaction, send each leg its first challenge.

    A leg whose author cannot pay fails with its own code; the others with 3005.
    """
    snaps = await ports.run(lambda db: [snapshot(r) for r in legs_of(db, snap.batch_id)])
    if not snaps or snaps[0].id != snap.id:
        return
    inputs: list[Coloured] = []
    outputs: list[Output] = []
    owners: dict[str, list[str]] = {}
    for leg_snap in snaps:
        leg = await ark.leg_of(leg_snap)
        try:
            mine, outs = await ark.plan(leg, exclude={c.vtxo_id for c in inputs})
        except ArkRelayError as exc:
            await driver.fail(leg_snap.id, exc.code, str(exc))
            return
        inputs += mine
        outputs += outs
        owners[leg_snap.id] = [c.vtxo_id for c in mine]
    spend = await ark.build(inputs, outputs)

    def run(db: Session) -> list[Transition]:
        batch = lock_batch(db, snap.batch_id)
        legs = legs_of(db, snap.batch_id)
        if batch is None or any(leg.state != SessionState.INTENT_RECEIVED for leg in legs):
            return []
        now = time.time()
        batch.context = {**batch.context, "spend": spend}
        batch.state, batch.ark_txid, batch.updated_at = "signing", spend["ark_txid"], int(now)
        out = []
        for leg in legs:
            leg.context = {**leg.context, "inputs": owners[leg.id]}
            mine = [s for s in spend["to_sign"] if s["owner"] == leg.author]
            leg.step_total = 2 * len(mine)
            event = emit_challenge(ports, db, leg, 1, now)
            out.append(move(db, leg, SessionState.ARK_TX_PREPARED, events=[event], now=now))
        return out

    ports.transitioned(await ports.run(run))
