"""Challenges (31511): what each step of a session asks its wallet to sign, stored with
the session's step and queued in the caller's transaction."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.orm import Session

from ..nostr import Event
from ..protocol.digest import payload_ref, sign_payload_digest
from ..protocol.signing import Challenge
from ..store.models import CeremonySession
from ..store.models import Challenge as ChallengeRow
from .ports import Ports
from .proofs import proof_context, proof_item, proof_steps, recovering
from .spends import sign_tx_context, spend_of, step_item

__all__ = ["SIGN_TX_DOMAIN", "challenge_spec", "emit_challenge"]

SIGN_TX_DOMAIN = "arkrelay/ark/v1"


def emit_challenge(ports: Ports, db: Session, row: CeremonySession, step: int, now: float) -> Event:
    """Create and store the challenge for ``step`` of ``row``; the caller queues it (as
    a move's event, or with ``enqueue``) in the same transaction."""
    spec = challenge_spec(ports, db, row, step)
    step_expires = int(min(row.expires_at, now + ports.settings.step_timeout.seconds))
    challenge = Challenge(
        session_id=row.id,
        type=spec["type"],
        payload_to_sign=spec["digest"],
        payload_ref=payload_ref(spec["digest"]),
        algo="BIP340",
        domain=spec["domain"],
        step_index=step,
        step_total=spec.get("step_total", row.step_total),
        expires_at=step_expires,
        context=spec["context"],
    )
    event = ports.messages.challenge(
        challenge, author=row.author, intent_id=row.intent_event_id, scheme=row.scheme
    )
    db.add(
        ChallengeRow(
            session_id=row.id,
            step_index=step,
            type=spec["type"],
            payload_to_sign=spec["digest"],
            payload_ref=challenge.payload_ref,
            content=msgspec.to_builtins(challenge),
            event_id=event.id,
            created_at=int(now),
            expires_at=step_expires,
        )
    )
    row.step_index = step
    row.step_expires_at = step_expires
    return event


def challenge_spec(ports: Ports, db: Session, row: CeremonySession, step: int) -> dict[str, Any]:
    ctx = row.context
    if "payloads" in ctx:
        item = ctx["payloads"][step - 1]
        return {
            "type": "sign_payload",
            "digest": sign_payload_digest(item["domain"], item["payload"]),
            "domain": item["domain"],
            "context": {"payload": item["payload"], "human": item["human"]},
        }
    if step > row.step_total and recovering(ctx):
        proof = proof_item(ctx, step, row.step_total)
        return {
            "type": "sign_tx",
            "digest": proof.sighash,
            "domain": SIGN_TX_DOMAIN,
            "context": proof_context(spend_of(db, row)["ark_txid"], proof),
            "step_total": row.step_total + proof_steps(ctx),
        }
    item = step_item(db, row, step)
    return {
        "type": "sign_tx",
        "digest": item.sighash,
        "domain": SIGN_TX_DOMAIN,
        "context": sign_tx_context(ports.assets, row, item),
    }
