"""Helpers to read what the gateway decided, from its own database."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from arkrelay_core.gateway import Gateway
from arkrelay_core.store.models import OutboxEvent


def outcomes_for(gateway: Gateway, intent_id: str) -> list[tuple[int, dict[str, Any]]]:
    """Every 31340/31341 the gateway queued that answers ``intent_id`` (kind, tags)."""
    with gateway._sessions() as db:
        rows = db.scalars(sa.select(OutboxEvent).where(OutboxEvent.kind.in_([31340, 31341]))).all()
    found = []
    for row in rows:
        tags = row.event["tags"]
        if ["e", intent_id] in tags:
            found.append((row.kind, {"tags": tags, "content": row.event["content"]}))
    return found


def ark_calls(gateway: Gateway) -> int:
    return gateway.components.backends["ark"].caller.statistics()["calls"]


def action_id(event: Any) -> str:
    return json.loads(event.content)["action_id"]


def transfer_params(recipient: str, amount: int = 1_000, **changes: Any) -> dict[str, Any]:
    """Params of an ark:transfer in gBTC paying the default fee."""
    return {
        "asset_id": "gBTC",
        "amount": amount,
        "recipient_pubkey": recipient,
        "fee": {"asset_id": "gBTC", "amount": 10},
        **changes,
    }
