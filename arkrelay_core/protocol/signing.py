"""Signing challenges (31511) and responses (31512), PROTOCOL.md §3."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = ["Challenge", "SignTxContext", "SigningResponse"]

ChallengeType = Literal["sign_tx", "sign_payload"]


class SignTxContext(msgspec.Struct, omit_defaults=True):
    """`context` of a sign_tx challenge: enough for a careful wallet to re-derive the sighash."""

    psbt: str
    input_index: Annotated[int, msgspec.Meta(ge=0)]
    tx_role: Literal["ark_tx", "checkpoint", "intent_proof"]
    human: str
    amount: int
    asset_id: str
    recipient_pubkey: str | None = None
    ticker: str | None = None


class Challenge(msgspec.Struct):
    """Content of a 31511 (reference/31511_challenge.schema.json). Every field is emitted."""

    session_id: str
    type: ChallengeType
    payload_to_sign: str
    payload_ref: str
    algo: Literal["BIP340"]
    domain: str
    step_index: Annotated[int, msgspec.Meta(ge=1)]
    step_total: Annotated[int, msgspec.Meta(ge=1)]
    expires_at: Annotated[int, msgspec.Meta(ge=0)]
    context: dict[str, Any]


class SigningResponse(msgspec.Struct, omit_defaults=True):
    """Content of a 31512 (reference/31512_response.schema.json).

    ``algo`` other than BIP340 decodes (the schema allows it) so that the engine can
    answer it with 3003 rather than a schema error.
    """

    session_id: str
    type: ChallengeType
    signature: Annotated[str, msgspec.Meta(pattern="^[0-9a-fA-F]*$")]
    payload_ref: str | None = None
    algo: Literal["BIP340", "ECDSA", "OTHER"] = "BIP340"
    pubkey: str | None = None
