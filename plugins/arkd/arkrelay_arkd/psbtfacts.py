"""What the offchain flow reads back from a PSBT it already had decoded, without decoding
it again: its txid, the outpoints it spends and the outputs arkd turns into VTXOs.

A ceremony hands the same PSBT strings back and forth (signed here, submitted, answered by
arkd, finalized); each fact is a pure function of the string, so it is remembered under
it when the string is produced or first decoded, and looked up afterwards.
"""

from __future__ import annotations

import collections
import dataclasses
import threading

from embit.psbt import PSBT

from . import arktx

__all__ = ["Facts", "facts", "remember"]

#: PSBT strings remembered, least recently used forgotten first: a few per ceremony in flight.
SIZE = 4096


@dataclasses.dataclass(frozen=True)
class Facts:
    txid: str
    #: The outpoint each input spends, in input order.
    spends: tuple[str, ...]
    #: The output indexes arkd makes VTXOs of when it finalizes the tx.
    vtxo_outputs: tuple[int, ...]


_memo: collections.OrderedDict[str, Facts] = collections.OrderedDict()
_lock = threading.Lock()


def remember(b64: str, packet: PSBT) -> Facts:
    """Record the facts of ``packet``, whose encoding is ``b64``."""
    found = Facts(
        txid=arktx.txid(packet),
        spends=tuple(arktx.input_outpoint(packet, i) for i in range(len(packet.inputs))),
        vtxo_outputs=tuple(out.index for out in arktx.vtxo_outputs(packet)),
    )
    with _lock:
        _memo[b64] = found
        _memo.move_to_end(b64)
        while len(_memo) > SIZE:
            _memo.popitem(last=False)
    return found


def facts(b64: str) -> Facts:
    """The facts of the PSBT ``b64`` (decoding it if unknown; ArkTxError if unreadable)."""
    with _lock:
        found = _memo.get(b64)
        if found is not None:
            _memo.move_to_end(b64)
            return found
    return remember(b64, arktx.decode_psbt(b64))
