"""Action types beyond the built-ins, registered by plugins (``arkrelay_register_intent_types``).

A plugin-defined type runs a ``sign_payload`` ceremony: the handler says what the author
must sign, the engine collects each signature over Nostr (31511/31512) and checks it, then
the handler executes with the verified signatures and reports what moved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import msgspec

from ..protocol import Fee, Intent, VtxoMove

__all__ = ["ActionResult", "IntentHandler", "IntentTypeSpec", "PayloadToSign"]


class PayloadToSign(msgspec.Struct, frozen=True):
    """One `sign_payload` step: the wallet signs sha256(domain || 0x0a || canonical(payload))."""

    domain: str
    payload: dict[str, Any]
    human: str


class ActionResult(msgspec.Struct, frozen=True):
    """What the action did; becomes the 31340."""

    ark_txid: str
    spent: tuple[VtxoMove, ...] = ()
    created: tuple[VtxoMove, ...] = ()
    fee_paid: Fee | None = None


@runtime_checkable
class IntentHandler(Protocol):
    async def prepare(self, intent: Intent, params: Any, author: str) -> Sequence[PayloadToSign]:
        """Validate against live state and say what the author must sign (at least one).

        Raise ProtocolViolation / BackendError (with their codes) to refuse the intent.
        """
        ...

    async def execute(
        self, intent: Intent, params: Any, author: str, signatures: Sequence[str]
    ) -> ActionResult:
        """Carry the action out; ``signatures`` are verified, in ``prepare``'s order."""
        ...


@dataclasses.dataclass(frozen=True)
class IntentTypeSpec:
    """:param type: namespaced ``family:action`` (``amm:swap``); must not shadow a built-in.
    :param params_type: msgspec Struct the intent's ``params`` decode into (1002 if not).
    :param handler: the IntentHandler that runs it.
    :param aliases: older names accepted for the same type.
    """

    type: str
    version: str
    params_type: type[msgspec.Struct]
    handler: IntentHandler
    aliases: tuple[str, ...] = ()
    description: str = ""
