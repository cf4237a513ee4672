"""Action types registered by plugins: a ``sign_payload`` ceremony around their handler.

The handler's ``prepare`` says what the author signs (one challenge per payload); once
every signature is verified its ``execute`` runs and its result becomes the 31340.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from ..codes import ErrorCode
from ..errors import ArkRelayError, ProtocolViolation
from ..interfaces import ActionResult
from ..protocol import Confirmation, Intent, SessionState, decode_content
from ..protocol.tags import confirmation_d
from ..store.models import Intent as IntentRow
from .challenges import emit_challenge
from .ports import Ports
from .records import Transition, lock_session, move, signatures
from .state import Snap

__all__ = ["PayloadSteps"]

log = logging.getLogger(__name__)


class PayloadSteps:
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    async def prepare(self, snap: Snap) -> None:
        spec = self.ports.intent_types[snap.type]
        intent, params = await self.ports.run(_intent_of, snap.intent_event_id, spec)
        payloads = await _plugin_call(spec, spec.handler.prepare, intent, params, snap.author)
        if not payloads:
            raise ProtocolViolation("the action needs nothing signed", code=ErrorCode.INTERNAL)

        def run(db: Session) -> list[Transition]:
            row = lock_session(db, snap.id)
            if row is None or row.state != SessionState.INTENT_RECEIVED:
                return []
            now = time.time()
            row.context = {**row.context, "payloads": [msgspec.to_builtins(p) for p in payloads]}
            row.step_total = len(payloads)
            event = emit_challenge(self.ports, db, row, 1, now)
            return [move(db, row, SessionState.ARK_TX_PREPARED, events=[event], now=now)]

        self.ports.transitioned(await self.ports.run(run))

    async def execute(self, snap: Snap) -> None:
        spec = self.ports.intent_types[snap.type]
        intent, params = await self.ports.run(_intent_of, snap.intent_event_id, spec)
        answers = await self.ports.run(signatures, snap.id)
        sigs = [answers[step] for step in sorted(answers)]
        result = await _plugin_call(spec, spec.handler.execute, intent, params, snap.author, sigs)
        await self.complete(snap, result)

    async def complete(self, snap: Snap, result: ActionResult) -> None:
        """A plugin action's result becomes its 31340."""

        def run(db: Session) -> list[Transition]:
            row = lock_session(db, snap.id)
            if row is None or row.state != SessionState.SIGNATURES_COLLECTED:
                return []
            now = time.time()
            content = Confirmation(
                status="success",
                ark_txid=result.ark_txid,
                spent=list(result.spent),
                created=list(result.created),
                timestamp=int(now),
                ref_action_id=row.context["action_id"],
                fee_paid=result.fee_paid,
            )
            event = self.ports.messages.confirmation(
                content,
                d=confirmation_d(row.context["action_id"]),
                answered=[row.intent_event_id],
                parties=[m.owner for m in result.created] or [row.author],
            )
            t1 = move(db, row, SessionState.ARK_EXECUTED, now=now)
            return [t1, move(db, row, SessionState.COMPLETED, events=[event], now=now)]

        self.ports.transitioned(await self.ports.run(run))


async def _plugin_call(spec: Any, method: Any, *args: Any) -> Any:
    """Run a plugin handler: its refusals keep their codes, its bugs fail the session (9001)."""
    try:
        return await method(*args)
    except ArkRelayError:
        raise
    # A third-party handler may raise anything; the gateway must outlive it.
    except Exception as exc:
        log.exception("intent type %s: handler %s raised", spec.type, method.__name__)
        raise ArkRelayError(
            f"the {spec.type} handler failed: {type(exc).__name__}", code=ErrorCode.INTERNAL
        ) from exc


def _intent_of(db: Session, event_id: str, spec: Any) -> tuple[Any, Any]:
    row = db.get(IntentRow, event_id)
    assert row is not None
    intent = decode_content(row.raw_event["content"], Intent)
    return intent, msgspec.convert(row.params, spec.params_type)
