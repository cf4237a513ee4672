"""Action intents (kind 31510) and the params of each built-in action type (PROTOCOL.md §2)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

from ..codes import ErrorCode
from ..errors import ProtocolViolation

__all__ = [
    "ACTION_ALIASES",
    "BUILTIN_PARAMS",
    "Fee",
    "Intent",
    "LandParams",
    "SplitParams",
    "SwapLegParams",
    "TransferParams",
    "canonical_action_type",
    "decode_content",
    "parse_params",
    "peek_id",
]

# msgspec matches patterns with re.search, where "$" also matches before a trailing newline;
# a length cap or "(?!\n)" closes that gap.
Hex64 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$", max_length=64)]
Amount = Annotated[int, msgspec.Meta(gt=0)]
FeeAmount = Annotated[int, msgspec.Meta(ge=0)]
#: action_id and batch_id become parts of `d` tags and database keys: keep them printable and short.
T = TypeVar("T")

Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$(?!\n)")]


class Fee(msgspec.Struct, forbid_unknown_fields=True):
    asset_id: str
    amount: FeeAmount


class Intent(msgspec.Struct, omit_defaults=True):
    """The public content of a 31510 event (reference/31510_intent.schema.json)."""

    action_id: Ident
    type: str
    params: dict[str, Any]
    expires_at: Annotated[int, msgspec.Meta(ge=0)]
    protocol_version: str | None = None
    network: str | None = None
    solver_id: str | None = None
    deadline: Annotated[int, msgspec.Meta(ge=0)] | None = None
    min_out_amount: Annotated[int, msgspec.Meta(ge=0)] | None = None
    recipient_pubkey: str | None = None


# `fee` is optional at the schema level on purpose: a missing fee is failure 4001 from the
# fee policy, not a 1002 schema error.
class TransferParams(msgspec.Struct, forbid_unknown_fields=True):
    asset_id: str
    amount: Amount
    recipient_pubkey: Hex64
    fee: Fee | None = None
    vtxo_ids: list[str] | None = None


class SplitParams(msgspec.Struct, forbid_unknown_fields=True):
    vtxo_id: str
    asset_id: str
    split_amounts: Annotated[list[Amount], msgspec.Meta(min_length=2)]
    fee: Fee | None = None


class LandParams(msgspec.Struct, forbid_unknown_fields=True):
    asset_id: str
    amount: Amount
    lightning_invoice: Annotated[str, msgspec.Meta(min_length=1)]
    fee: Fee | None = None


class SwapLegParams(msgspec.Struct, forbid_unknown_fields=True):
    asset_id: str
    amount: Amount
    recipient_pubkey: Hex64
    batch_id: Ident
    fee: Fee | None = None
    vtxo_ids: list[str] | None = None


BUILTIN_PARAMS: dict[str, type[msgspec.Struct]] = {
    "ark:transfer": TransferParams,
    "vtxo:split": SplitParams,
    "lightning:land": LandParams,
    "ark:swap_leg": SwapLegParams,
}

ACTION_ALIASES = {
    "p2p_transfer": "ark:transfer",
    "land_lightning": "lightning:land",
    "atomic_swap": "ark:swap_leg",
}


def canonical_action_type(name: str) -> str:
    return ACTION_ALIASES.get(name, name)


def _lift_legacy_fee(params: dict[str, Any]) -> dict[str, Any]:
    if "fee" in params or not ({"fee_asset_id", "fee_amount"} & params.keys()):
        return params
    params = dict(params)
    params["fee"] = {
        "asset_id": params.pop("fee_asset_id", None),
        "amount": params.pop("fee_amount", None),
    }
    return params


def parse_params(
    action_type: str,
    params: dict[str, Any],
    registry: dict[str, type[msgspec.Struct]] | None = None,
) -> msgspec.Struct:
    """Validate an intent's ``params`` for its (canonical or alias) type.

    ``registry`` maps canonical type names to params Structs; it defaults to the
    built-ins, and the ceremony engine passes the built-ins plus plugin-registered types.
    Raises ProtocolViolation 1005 for an unknown type, 1002 for bad params.
    """
    canonical = canonical_action_type(action_type)
    types = BUILTIN_PARAMS if registry is None else registry
    params_type = types.get(canonical)
    if params_type is None:
        raise ProtocolViolation(
            f"unsupported action type {action_type!r}", code=ErrorCode.UNSUPPORTED_ACTION
        )
    try:
        return msgspec.convert(_lift_legacy_fee(params), params_type)
    except msgspec.ValidationError as exc:
        raise ProtocolViolation(f"params: {_describe(exc)}") from exc


def decode_content(raw: str | bytes, type_: type[T]) -> T:
    """Decode JSON content into ``type_``; any failure is ProtocolViolation 1002."""
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.DecodeError as exc:
        raise ProtocolViolation(_describe(exc)) from exc


def peek_id(raw: str | bytes, key: str) -> str | None:
    """``raw``'s top-level ``key`` if it is a plausible id (1..128 chars), even when the
    rest is malformed: what a refusal of malformed content can still refer to."""
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None


def _describe(exc: msgspec.DecodeError) -> str:
    # msgspec says "... - at `$.params.amount`"; keep it, it is what a wallet author needs.
    return str(exc)
