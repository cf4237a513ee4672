"""``GET /settlements/{settlement_id}/proof/{ark_txid}`` on the running gateway, its answers
checked against the tree docs/settlement.md specifies (the test reference, not the module)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa

from arkrelay_core.store.models import SettlementLeaf
from tests.settlement import reference

from .settlements import add_settlement

ERROR_KEYS = {"error", "code", "detail"}


async def store(api: Any, *args: Any, **kw: Any) -> None:
    await api.gateway.engine.store.run(lambda db: add_settlement(db, *args, **kw))


async def test_every_leaf_has_a_proof_that_folds_to_the_stored_root(api) -> None:
    ids = reference.txids(5, seed="api")
    await store(api, "anchor-1767225600", ids, period_end=1_767_225_600)
    root = reference.root(ids).hex()
    for index, txid in enumerate(sorted(ids)):
        response = await api.get(f"/settlements/anchor-1767225600/proof/{txid}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body == {
            "settlement_id": "anchor-1767225600",
            "ark_txid": txid,
            "index": index,
            "count": 5,
            "path": body["path"],
            "merkle_root": root,
            "state": "published",
            "l1_txid": "cd" * 32,
            "block_height": 812_345,
            "period_start": 1_767_222_000,
            "period_end": 1_767_225_600,
        }
        assert [s["side"] for s in body["path"]] == reference.sides(index, 5)
        path = [(s["side"], bytes.fromhex(s["hash"])) for s in body["path"]]
        assert reference.fold(txid, path).hex() == root


async def test_a_proof_before_the_commitment_is_on_chain(api) -> None:
    [only] = reference.txids(1, seed="early")
    await store(api, "anchor-1", [only], state="collecting", l1_txid=None, block_height=None)
    body = (await api.get(f"/settlements/anchor-1/proof/{only}")).json()
    assert body["path"] == [] and body["merkle_root"] == reference.leaf(only).hex()
    assert body["state"] == "collecting" and body["l1_txid"] is None
    assert body["block_height"] is None


async def test_an_upper_case_txid_is_read_as_the_same_txid(api) -> None:
    ids = reference.txids(2, seed="case")
    await store(api, "anchor-2", ids)
    response = await api.get(f"/settlements/anchor-2/proof/{ids[0].upper()}")
    assert response.status_code == 200 and response.json()["ark_txid"] == ids[0]


@pytest.mark.parametrize(
    "txid", ["nothing-here", "ab" * 31, "ab" * 33, "zz" * 32, "0x" + "ab" * 31, "ab " * 21]
)
async def test_a_malformed_txid_is_400(api, txid: str) -> None:
    await store(api, "anchor-3", reference.txids(2, seed="malformed"))
    response = await api.get(f"/settlements/anchor-3/proof/{txid}")
    assert response.status_code == 400, response.text
    assert set(response.json()) == ERROR_KEYS and response.json()["error"] == "bad_request"


async def test_unknown_settlement_or_txid_is_404(api) -> None:
    ours = reference.txids(3, seed="ours")
    theirs = reference.txids(2, seed="theirs")
    await store(api, "anchor-4", ours)
    await store(api, "anchor-5", theirs)
    for path, says in (
        (f"/settlements/anchor-404/proof/{ours[0]}", "no settlement anchor-404"),
        (f"/settlements/anchor-4/proof/{theirs[0]}", "does not commit to"),
        (f"/settlements/anchor-4/proof/{'00' * 32}", "does not commit to"),
    ):
        response = await api.get(path)
        assert response.status_code == 404, path
        assert set(response.json()) == ERROR_KEYS and says in response.json()["detail"]
    # The same txid is found in the settlement that holds it.
    assert (await api.get(f"/settlements/anchor-5/proof/{theirs[0]}")).status_code == 200


async def test_a_settlement_without_leaves_proves_nothing(api) -> None:
    """Settlements recorded before leaves were kept (migration 0003) have no proofs."""
    txid = reference.txids(1, seed="legacy")[0]

    def legacy(db: Any) -> None:
        add_settlement(db, "anchor-6", [txid])
        db.flush()
        db.execute(sa.delete(SettlementLeaf).where(SettlementLeaf.settlement_id == "anchor-6"))

    await api.gateway.engine.store.run(legacy)
    response = await api.get(f"/settlements/anchor-6/proof/{txid}")
    assert response.status_code == 404
    assert (await api.get("/settlements/anchor-6")).status_code == 200


async def test_a_root_that_disagrees_with_the_leaves_is_never_served(
    api, caplog: pytest.LogCaptureFixture
) -> None:
    ids = reference.txids(4, seed="broken")
    await store(api, "anchor-7", ids, merkle_root="ee" * 32)
    with caplog.at_level(logging.ERROR, logger="arkrelay_core.http.views"):
        response = await api.get(f"/settlements/anchor-7/proof/{ids[0]}")
    assert response.status_code == 500
    assert set(response.json()) == ERROR_KEYS and "inconsistent" in response.json()["detail"]
    assert "ee" * 32 not in response.text
    [record] = [r for r in caplog.records if r.name == "arkrelay_core.http.views"]
    assert "anchor-7 is inconsistent" in record.getMessage()
    assert "ee" * 32 in record.getMessage()
