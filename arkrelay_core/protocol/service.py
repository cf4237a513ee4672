"""Service requests (31500) and their responses (31501), PROTOCOL.md §5."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ..codes import ErrorCode
from ..errors import ProtocolViolation
from .intents import Amount, Ident

__all__ = [
    "AssetInfo",
    "BatchAccepted",
    "ErrorBody",
    "ErrorResponse",
    "GetInfo",
    "GetStatus",
    "InfoResponse",
    "LiftLightning",
    "LiftPending",
    "ServiceRequest",
    "ServiceResponse",
    "StatusResponse",
    "SubmitBatch",
    "SyncState",
    "SyncStateResponse",
    "VtxoEntry",
    "decode_service_request",
]


class _Request(msgspec.Struct, tag_field="action", forbid_unknown_fields=False):
    request_id: Ident


class GetInfo(_Request, tag="get_info"):
    pass


class SyncState(_Request, tag="sync_state"):
    asset_id: str | None = None


class LiftLightning(_Request, tag="lift_lightning"):
    asset_id: str
    amount: Amount


class GetStatus(_Request, tag="get_status"):
    action_id: str | None = None
    session_id: str | None = None


class SubmitBatch(_Request, tag="submit_batch"):
    batch_id: Ident
    # Full signed 31510 events; each is verified like any inbound event before use.
    intents: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=2, max_length=64)]


ServiceRequest = GetInfo | SyncState | LiftLightning | GetStatus | SubmitBatch

_ACTIONS = ("get_info", "sync_state", "lift_lightning", "get_status", "submit_batch")


def decode_service_request(raw: str | bytes) -> ServiceRequest:
    """Decode a 31500's decrypted content.

    An action we do not offer is 1005; anything else malformed is 1002.
    """
    try:
        request = msgspec.json.decode(raw, type=ServiceRequest)
    except msgspec.ValidationError as exc:
        action = _peek_action(raw)
        if isinstance(action, str) and action not in _ACTIONS:
            raise ProtocolViolation(
                f"unsupported action {action!r}", code=ErrorCode.UNSUPPORTED_ACTION
            ) from exc
        raise ProtocolViolation(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ProtocolViolation(str(exc)) from exc
    if isinstance(request, GetStatus) and (request.action_id is None) == (
        request.session_id is None
    ):
        raise ProtocolViolation("get_status needs exactly one of action_id or session_id")
    return request


def _peek_action(raw: str | bytes) -> object:
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return doc.get("action") if isinstance(doc, dict) else None


# ---------------------------------------------------------------------------- responses


class ServiceResponse(msgspec.Struct, omit_defaults=True, kw_only=True):
    """Every 31501 carries these; subclasses add the action's fields."""

    request_id: str
    action: str
    status: Literal["ok", "pending", "error"]


class ErrorBody(msgspec.Struct):
    code: int
    message: str
    retryable: bool


class ErrorResponse(ServiceResponse, kw_only=True):
    error: ErrorBody


class AssetInfo(msgspec.Struct, omit_defaults=True):
    asset_id: str
    ticker: str
    name: str | None = None
    decimals: int = 0


class ArkServerInfo(msgspec.Struct):
    """What a wallet needs to derive VTXO scripts and check the outputs it is asked to sign."""

    signer_pubkey: str
    unilateral_exit_delay: int
    dust: int
    #: Where a wallet reaches the Ark server itself (arkd's REST interface: its own
    #: VTXOs from the indexer, GetPendingTx, ...); "" when the gateway knows none.
    server_url: str = ""


class InfoResponse(ServiceResponse, kw_only=True):
    network: str
    service_pubkey: str
    fees: dict[str, Any]
    assets: list[AssetInfo]
    plugins: dict[str, str]
    #: Absent when the gateway runs no Ark backend.
    ark: ArkServerInfo | None = None


class VtxoEntry(msgspec.Struct, omit_defaults=True):
    vtxo_id: str
    asset_id: str
    amount: int
    status: str
    expires_at: int
    ticker: str | None = None


class SyncStateResponse(ServiceResponse, kw_only=True):
    vtxos: list[VtxoEntry]
    balances: dict[str, int]


class LiftPending(ServiceResponse, kw_only=True):
    invoice: str
    payment_hash: str
    expires_at: int
    asset_id: str
    amount: int
    ticker: str | None = None


class StatusResponse(ServiceResponse, kw_only=True):
    session_id: str
    state: str
    step_index: int
    step_total: int
    action_id: str | None = None
    error: ErrorBody | None = None


class BatchAccepted(ServiceResponse, kw_only=True):
    batch_id: str
    session_ids: list[str]
