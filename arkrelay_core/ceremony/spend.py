"""Which VTXOs an action spends and which it creates, with their asset colours.

Every listed asset is carried 1 unit = 1 sat (gBTC by definition; other assets by this
gateway's colouring), so a VTXO's colour amount is its value and an ark transaction that
balances in sats balances per asset too. A VTXO the gateway never coloured is gBTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from ..errors import (
    InsufficientBalance,
    ProtocolViolation,
    VtxoAlreadySpent,
    VtxoExpired,
    VtxoNotOwned,
)
from ..interfaces import TxOutputSpec, Vtxo
from ..protocol import LandParams, SplitParams, SwapLegParams, TransferParams

__all__ = ["Coloured", "Leg", "Output", "leg_for", "select_inputs"]


class Coloured(msgspec.Struct, frozen=True):
    """A VTXO with its colour."""

    vtxo_id: str
    owner: str
    asset_id: str
    amount: int
    script: str = ""
    expires_at: int = 0

    def vtxo(self) -> Vtxo:
        return Vtxo(
            vtxo_id=self.vtxo_id,
            owner=self.owner,
            amount=self.amount,
            script=self.script,
            expires_at=self.expires_at,
        )


class Output(msgspec.Struct, frozen=True):
    owner: str
    asset_id: str
    amount: int

    def spec(self) -> TxOutputSpec:
        return TxOutputSpec(self.owner, self.amount)


class Leg(msgspec.Struct, frozen=True):
    """One author's part of an ark transaction: what they must pay, to whom."""

    author: str
    #: Outputs paid to others (recipient, gateway fee), before the author's change.
    pays: tuple[Output, ...]
    #: VTXOs that must be inputs (vtxo_ids of a transfer, the VTXO a split divides).
    required: tuple[str, ...] = ()
    #: Outputs the author keeps besides change (a split's pieces).
    keeps: tuple[Output, ...] = ()

    def needs(self) -> dict[str, int]:
        need: dict[str, int] = defaultdict(int)
        for out in (*self.pays, *self.keeps):
            need[out.asset_id] += out.amount
        return dict(need)


def leg_for(
    params: msgspec.Struct,
    author: str,
    asset_id: str,
    fee_asset: str | None,
    fee_amount: int,
    gateway: str,
) -> Leg:
    """The leg a built-in action's params describe (fees already checked)."""
    fee = (Output(gateway, fee_asset, fee_amount),) if fee_asset and fee_amount > 0 else ()
    if isinstance(params, TransferParams | SwapLegParams):
        if params.recipient_pubkey == author:
            raise ProtocolViolation("recipient_pubkey is the author")
        pay = Output(params.recipient_pubkey, asset_id, params.amount)
        return Leg(author, (pay, *fee), tuple(params.vtxo_ids or ()))
    if isinstance(params, SplitParams):
        pieces = tuple(Output(author, asset_id, a) for a in params.split_amounts)
        return Leg(author, fee, (params.vtxo_id,), pieces)
    if isinstance(params, LandParams):
        # The gateway takes amount + fee in the landed asset, then pays the invoice.
        total = params.amount + (fee_amount if fee_asset == asset_id else 0)
        rest = fee if fee_asset != asset_id else ()
        return Leg(author, (Output(gateway, asset_id, total), *rest))
    raise TypeError(f"no leg for {type(params).__name__}")


def select_inputs(
    leg: Leg,
    owned: Sequence[Coloured],
    *,
    now: int,
    busy: Iterable[str] = (),
    known: Mapping[str, Coloured] | None = None,
) -> tuple[list[Coloured], list[Output]]:
    """Pick the author's inputs for ``leg`` and add change outputs per asset.

    ``owned`` is the author's spendable VTXOs (coloured); ``busy`` are VTXOs other open
    sessions are spending; ``known`` has every VTXO the gateway has seen, to tell "not
    yours" (2003) and "spent" (2002) apart for explicitly named inputs.
    """
    mine = {v.vtxo_id: v for v in owned}
    taken: dict[str, Coloured] = {}
    busy = set(busy)
    for vtxo_id in leg.required:
        vtxo = mine.get(vtxo_id)
        if vtxo is None:
            other = (known or {}).get(vtxo_id)
            if other is not None and other.owner != leg.author:
                raise VtxoNotOwned(f"VTXO {vtxo_id} is not owned by the intent's author")
            raise VtxoAlreadySpent(f"VTXO {vtxo_id} is spent or unknown")
        if vtxo_id in busy:
            raise VtxoAlreadySpent(f"VTXO {vtxo_id} is being spent by another session")
        if vtxo.expires_at and vtxo.expires_at <= now:
            raise VtxoExpired(f"VTXO {vtxo_id} has expired")
        taken[vtxo_id] = vtxo
    need = leg.needs()
    have: dict[str, int] = defaultdict(int)
    for vtxo in taken.values():
        have[vtxo.asset_id] += vtxo.amount
    for asset_id, amount in need.items():
        if have[asset_id] >= amount:
            continue
        spare = sorted(
            (
                v
                for v in owned
                if v.asset_id == asset_id
                and v.vtxo_id not in taken
                and v.vtxo_id not in busy
                and not (v.expires_at and v.expires_at <= now)
            ),
            key=lambda v: -v.amount,
        )
        for vtxo in spare:
            taken[vtxo.vtxo_id] = vtxo
            have[asset_id] += vtxo.amount
            if have[asset_id] >= amount:
                break
        if have[asset_id] < amount:
            raise InsufficientBalance(
                f"needs {amount} of {asset_id}, the author can spend {have[asset_id]}"
            )
    change = [
        Output(leg.author, asset_id, have[asset_id] - need.get(asset_id, 0))
        for asset_id in sorted(have)
        if have[asset_id] > need.get(asset_id, 0)
    ]
    return list(taken.values()), [*leg.pays, *leg.keeps, *change]
