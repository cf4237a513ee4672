"""A gateway that lies: its Ark backend builds a PSBT other than the one the intent asks for.

Both reference wallets must refuse to sign such a challenge. The tampering happens where a
buggy or malicious gateway would do it, before the sighash is computed, so the challenge's
``payload_to_sign`` matches the tampered PSBT and only a check against the intent finds it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from arkrelay_core.gateway import Gateway
from arkrelay_core.interfaces import TxOutputSpec

__all__ = ["ATTACKER", "Tampering", "redirect", "skim", "tamper_outputs"]

#: Where a redirected payment goes: a key no test wallet holds.
ATTACKER = "5e" * 32

Rewrite = Callable[[list[TxOutputSpec]], list[TxOutputSpec]]


@dataclasses.dataclass
class Tampering:
    builds: int = 0


def redirect(recipient: str) -> Rewrite:
    """Pay what ``recipient`` should get to :data:`ATTACKER` instead."""

    def rewrite(outputs: list[TxOutputSpec]) -> list[TxOutputSpec]:
        return [
            msgspec.structs.replace(o, owner=ATTACKER) if o.owner == recipient else o
            for o in outputs
        ]

    return rewrite


def skim(recipient: str, sats: int) -> Rewrite:
    """Take ``sats`` from what ``recipient`` gets and add them to the gateway's fee output."""

    def rewrite(outputs: list[TxOutputSpec]) -> list[TxOutputSpec]:
        changed = []
        for o in outputs:
            if o.owner == recipient:
                o = msgspec.structs.replace(o, amount=o.amount - sats)
            changed.append(o)
        changed.append(TxOutputSpec(owner=ATTACKER, amount=sats))
        return changed

    return rewrite


def tamper_outputs(gateway: Gateway, rewrite: Rewrite) -> Tampering:
    """From now on every ark tx the gateway builds has its outputs passed through ``rewrite``."""
    backend = gateway.components.backends["ark"]
    original = backend.build_offchain_tx
    seen = Tampering()

    async def build(inputs: Sequence[Any], outputs: Sequence[TxOutputSpec]) -> Any:
        seen.builds += 1
        return await original(inputs, rewrite(list(outputs)))

    backend.build_offchain_tx = build
    return seen
