"""The fee policy (PROTOCOL.md §2): what each action must pay, checked before any backend.

Defaults: ark:transfer, vtxo:split and each swap leg pay 10 sat in gBTC;
lightning:land pays 0.1 % of the amount, rounded up, in the landed asset. Operators may
change the figures; a missing or wrong fee is 4001.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from ..codes import ErrorCode
from ..errors import ProtocolViolation, UnknownAsset
from ..protocol import Fee, LandParams, SplitParams, SwapLegParams, TransferParams

__all__ = ["FeeSchedule", "check_fee", "required_fee"]

#: Resolves an asset id or a listed ticker to the asset id (raises UnknownAsset, 2005).
AssetResolver = Callable[[str], str]


class FeeSchedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Operator-configurable fees; amounts in the fee asset's base unit."""

    fee_asset: str = "gBTC"
    transfer: Annotated[int, msgspec.Meta(ge=0)] = 10
    split: Annotated[int, msgspec.Meta(ge=0)] = 10
    swap_leg: Annotated[int, msgspec.Meta(ge=0)] = 10
    #: Parts per million of the landed amount, rounded up (1000 = 0.1 %).
    land_ppm: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 1000


def required_fee(params: Any, schedule: FeeSchedule, resolve: AssetResolver) -> Fee:
    """The fee ``params`` must carry, with its asset resolved to an asset id."""
    if isinstance(params, LandParams):
        amount = -(-params.amount * schedule.land_ppm // 1_000_000)  # ceiling division
        return Fee(asset_id=resolve(params.asset_id), amount=amount)
    flat = {
        TransferParams: schedule.transfer,
        SplitParams: schedule.split,
        SwapLegParams: schedule.swap_leg,
    }.get(type(params))
    if flat is None:
        raise TypeError(f"no fee rule for {type(params).__name__}")
    return Fee(asset_id=resolve(schedule.fee_asset), amount=flat)


def check_fee(params: Any, schedule: FeeSchedule, resolve: AssetResolver) -> Fee:
    """Return the fee if ``params.fee`` is exactly the required one; else 4001."""
    required = required_fee(params, schedule, resolve)
    offered = params.fee
    if offered is None:
        raise ProtocolViolation(
            f"fee missing: {required.amount} of {required.asset_id} required",
            code=ErrorCode.FEE_INCORRECT,
        )
    try:
        offered_asset = resolve(offered.asset_id)
    except UnknownAsset:
        offered_asset = None  # a fee in an asset we do not know is simply the wrong fee
    if offered_asset != required.asset_id or offered.amount != required.amount:
        raise ProtocolViolation(
            f"fee {offered.amount} of {offered.asset_id} is wrong: "
            f"{required.amount} of {required.asset_id} required",
            code=ErrorCode.FEE_INCORRECT,
        )
    return required
