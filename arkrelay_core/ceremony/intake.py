"""Intent intake: every check PROTOCOL.md §2 makes on a 31510 before any backend is touched.

The event has already been verified by its transport (id, signature) and stored by id.
Checks run in a fixed order, each failing with its own code: content schema (1002),
expiry and staleness (1003), network and protocol version (1006), action type (1005),
params (1002), assets (2005), fee (4001). Replay (1004) is the store's unique
(author, action_id) constraint, when the intent is recorded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import msgspec

from ..codes import ErrorCode
from ..errors import ProtocolViolation
from ..nostr import Event
from ..protocol import (
    BUILTIN_PARAMS,
    DEFAULT_EVENT_WINDOW,
    Fee,
    Intent,
    Kind,
    canonical_action_type,
    decode_content,
    is_stale,
    parse_params,
)
from .fees import AssetResolver, FeeSchedule, check_fee

__all__ = ["SUPPORTED_PROTOCOL_MAJOR", "AcceptedIntent", "check_intent"]

SUPPORTED_PROTOCOL_MAJOR = "1"


@dataclasses.dataclass(frozen=True)
class AcceptedIntent:
    event: Event
    intent: Intent
    action_type: str
    params: msgspec.Struct
    #: The action's asset as an asset id (tickers resolved); None for a plugin type
    #: whose params name no asset.
    asset_id: str | None
    fee: Fee | None


def check_intent(
    event: Event,
    *,
    now: float,
    network: str,
    resolve_asset: AssetResolver,
    fees: FeeSchedule,
    window: float = DEFAULT_EVENT_WINDOW,
    params_types: Mapping[str, type[msgspec.Struct]] = BUILTIN_PARAMS,
) -> AcceptedIntent:
    """Accept ``event`` as an intent, or raise ProtocolViolation / UnknownAsset with its code.

    ``params_types`` maps canonical action types to their params Structs (the built-ins
    plus plugin-registered types); types without a fee rule (plugin types) carry none.
    """
    if event.kind != Kind.INTENT:
        raise ProtocolViolation(f"kind {event.kind} is not an intent")
    intent = decode_content(event.content, Intent)
    if intent.expires_at <= now:
        raise ProtocolViolation("intent expired", code=ErrorCode.EXPIRED)
    if is_stale(event.created_at, now, window):
        raise ProtocolViolation("event too old or too far in the future", code=ErrorCode.EXPIRED)
    if intent.network is not None and intent.network != network:
        raise ProtocolViolation(
            f"intent is for {intent.network}, this gateway runs {network}",
            code=ErrorCode.WRONG_NETWORK,
        )
    version = intent.protocol_version
    if version is not None and version.split(".")[0] != SUPPORTED_PROTOCOL_MAJOR:
        raise ProtocolViolation(
            f"protocol version {version} is not supported (this gateway speaks 1.x)",
            code=ErrorCode.WRONG_NETWORK,
        )
    params = parse_params(intent.type, intent.params, dict(params_types))
    action_type = canonical_action_type(intent.type)
    asset = getattr(params, "asset_id", None)
    asset_id = resolve_asset(asset) if isinstance(asset, str) else None
    fee = check_fee(params, fees, resolve_asset) if action_type in BUILTIN_PARAMS else None
    return AcceptedIntent(event, intent, action_type, params, asset_id, fee)
