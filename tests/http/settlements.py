"""Settlement rows written straight into the store, as the settlement host would leave them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from arkrelay_core.store.models import L2Transaction, Settlement, SettlementLeaf
from tests.settlement import reference

__all__ = ["add_settlement"]


def add_settlement(
    db: Any,
    settlement_id: str,
    txids: Sequence[str],
    *,
    state: str = "published",
    merkle_root: str | None = None,
    l1_txid: str | None = "cd" * 32,
    block_height: int | None = 812_345,
    confirmations: int = 3,
    period_end: int | None = None,
    history: list[dict[str, Any]] | None = None,
    context: dict[str, Any] | None = None,
) -> Settlement:
    """A settlement over ``txids`` with its leaves in leaf order; ``merkle_root`` defaults
    to the root docs/settlement.md gives (computed by the test reference, not the module).
    Transactions not yet recorded are recorded as finalized a minute before the period's
    end."""
    end = int(time.time()) if period_end is None else period_end
    leaves = sorted(set(txids))
    row = Settlement(
        id=settlement_id,
        strategy="anchor",
        state=state,
        period_start=end - 3600,
        period_end=end,
        merkle_root=merkle_root or reference.root(leaves).hex(),
        l2_tx_count=len(leaves),
        l1_txid=l1_txid,
        block_height=block_height,
        confirmations=confirmations,
        history=(
            [{"state": state, "at": end, "note": "written by the test"}]
            if history is None
            else history
        ),
        context={} if context is None else context,
        created_at=end,
        updated_at=end,
    )
    db.add(row)
    db.flush()
    for position, txid in enumerate(leaves):
        db.add(SettlementLeaf(settlement_id=settlement_id, position=position, ark_txid=txid))
        l2 = db.get(L2Transaction, txid)
        if l2 is None:
            l2 = L2Transaction(ark_txid=txid, finalized_at=end - 60)
            db.add(l2)
        # As the host does: a settlement holds its transactions unless it failed.
        if state != "failed":
            l2.settlement_id = settlement_id
    return row
