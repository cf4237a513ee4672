"""The proof checks called directly, without the command: a good proof and 31342 give a
``Verified``; each check, broken on its own, fails by its name; and the module stays free
of click and of I/O libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from arkrelay_core.nostr import Event, generate_secret_key, sign_event, xonly_public_key
from arkrelay_core.protocol import Kind
from arkrelay_core.settlement import merkle
from arkrelay_core.settlement.proofcheck import (
    ProofCheckFailed,
    ProofDocument,
    decode_announcement,
    decode_proof,
    verify_commitment,
)

from . import reference

SETTLEMENT = "anchor-1767225600"
IDS = reference.txids(5, seed="proofcheck")
TXID = sorted(IDS)[2]
SECRET = generate_secret_key()
GATEWAY = xonly_public_key(SECRET).hex()


def proof_json(txid: str = TXID, ids: list[str] = IDS, **changes: Any) -> dict[str, Any]:
    built = merkle.build_proof(ids, txid)
    document = {
        "settlement_id": SETTLEMENT,
        "ark_txid": txid,
        "index": built.index,
        "count": built.count,
        "path": [{"side": s.side, "hash": s.hash} for s in built.path],
        "merkle_root": built.merkle_root,
    }
    document.update(changes)
    return document


def proof(**changes: Any) -> ProofDocument:
    return decode_proof(json.dumps(proof_json(**changes)).encode(), "test")


def content(ids: list[str] = IDS, **changes: Any) -> str:
    fields = {
        "l1_txid": "5e" * 32,
        "block_height": 930_001,
        "merkle_root_of_l2_txs": reference.root(ids).hex(),
        "l2_tx_count": len(ids),
        "period_start": 1_767_222_000,
        "period_end": 1_767_225_600,
    }
    fields.update(changes)
    return json.dumps(fields)


def announcement(
    text: str | None = None,
    *,
    secret: bytes = SECRET,
    kind: int = Kind.L1_COMMITMENT,
    d: str = f"l1:{SETTLEMENT}",
) -> Event:
    return sign_event(secret, kind=kind, content=text or content(), tags=[["d", d]])


def failed_check(check: Callable[[], object]) -> ProofCheckFailed:
    with pytest.raises(ProofCheckFailed) as caught:
        check()
    return caught.value


# --------------------------------------------------------------------------- the good case


def test_a_good_proof_and_event_verify() -> None:
    event = announcement()
    verified = verify_commitment(proof(), event, GATEWAY)
    assert verified.event == event
    assert verified.proof.ark_txid == TXID and verified.proof.index == 2
    assert verified.commitment.merkle_root_of_l2_txs == reference.root(IDS).hex()
    assert verified.commitment.l2_tx_count == 5
    assert verify_commitment(proof(), event, None) == verified


def test_every_leaf_verifies() -> None:
    event = announcement()
    for txid in IDS:
        assert verify_commitment(proof(txid=txid), event, GATEWAY).proof.ark_txid == txid


# --------------------------------------------------------------------------- each check


def _flipped_first_step() -> dict[str, Any]:
    path = proof_json()["path"]
    flipped = {**path[0], "side": "left" if path[0]["side"] == "right" else "right"}
    return {"path": [flipped, *path[1:]]}


def _wrong_sibling() -> dict[str, Any]:
    path = proof_json()["path"]
    changed = bytearray.fromhex(path[-1]["hash"])
    changed[-1] ^= 1
    return {"path": [*path[:-1], {**path[-1], "hash": changed.hex()}]}


def _event_cases() -> dict[str, tuple[Event, str, str]]:
    good = announcement()
    return {
        "id of unhashable text": (
            msgspec.structs.replace(good, content="\ud800"),
            "event id",
            "lone surrogate",
        ),
        "content changed after signing": (
            msgspec.structs.replace(good, content=content(block_height=1)),
            "event id",
            "is not the hash of the event",
        ),
        "signature of another event": (
            msgspec.structs.replace(good, sig=announcement(content(block_height=1)).sig),
            "event signature",
            f"not a valid BIP340 signature by {GATEWAY}",
        ),
        "another kind": (announcement(kind=Kind.CONFIRMATION), "event kind", "31340, not 31342"),
        "another author": (
            announcement(secret=generate_secret_key()),
            "event author",
            f"is not the gateway {GATEWAY}",
        ),
        "another settlement": (
            announcement(d="l1:anchor-1"),
            "event d tag",
            f"'l1:anchor-1', expected 'l1:{SETTLEMENT}'",
        ),
        "no d tag": (
            sign_event(SECRET, kind=Kind.L1_COMMITMENT, content=content()),
            "event d tag",
            "None, expected",
        ),
        "content not a commitment": (announcement("{}"), "event content", "not an L1 commitment"),
        "another root": (
            announcement(content(merkle_root_of_l2_txs="ab" * 32)),
            "merkle root",
            f"the event commits to {'ab' * 32}",
        ),
        "another count": (
            announcement(content(l2_tx_count=6)),
            "l2_tx_count",
            "6 transactions, the proof's tree has 5",
        ),
    }


@pytest.mark.parametrize("what", list(_event_cases()))
def test_a_wrong_event_fails_by_name(what: str) -> None:
    event, check, says = _event_cases()[what]
    failure = failed_check(lambda: verify_commitment(proof(), event, GATEWAY))
    assert failure.check == check, failure
    assert says in failure.detail, failure.detail


def _proof_cases() -> dict[str, tuple[dict[str, Any], str, str]]:
    return {
        "flipped side": (_flipped_first_step(), "proof shape", "leaf 2 of 5 has a path of"),
        "missing step": ({"path": proof_json()["path"][:-1]}, "proof shape", "this one has"),
        "index past count": ({"index": 5}, "proof shape", "index 5 is not below count 5"),
        "wrong sibling": (_wrong_sibling(), "proof path", "not to the committed root"),
        "other txid": ({"ark_txid": sorted(IDS)[1]}, "proof path", "the path folds"),
    }


@pytest.mark.parametrize("what", list(_proof_cases()))
def test_a_wrong_proof_fails_by_name(what: str) -> None:
    changes, check, says = _proof_cases()[what]
    failure = failed_check(lambda: verify_commitment(proof(**changes), announcement(), GATEWAY))
    assert failure.check == check, failure
    assert says in failure.detail, failure.detail


def test_the_first_failing_check_is_the_one_named() -> None:
    """The event's own checks come before its agreement with the proof."""
    wrong_everything = announcement(
        content(l2_tx_count=9), secret=generate_secret_key(), kind=Kind.CONFIRMATION
    )
    failure = failed_check(lambda: verify_commitment(proof(index=4), wrong_everything, GATEWAY))
    assert failure.check == "event kind"
    wrong_count_and_shape = announcement(content(l2_tx_count=9))
    failure = failed_check(lambda: verify_commitment(proof(index=4), wrong_count_and_shape, None))
    assert failure.check == "l2_tx_count"


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00not json",
        json.dumps({"settlement_id": SETTLEMENT}).encode(),
        json.dumps(proof_json(count=0)).encode(),
        json.dumps(proof_json(merkle_root="AB" * 32)).encode(),
        json.dumps(proof_json(path=[{"side": "up", "hash": "ab" * 32}])).encode(),
    ],
)
def test_what_is_not_a_proof_fails_as_proof(raw: bytes) -> None:
    failure = failed_check(lambda: decode_proof(raw, "proof.json"))
    assert failure.check == "proof"
    assert failure.detail.startswith("proof.json is not a settlement proof: ")


@pytest.mark.parametrize("raw", [b"{}", b"[]", b"not json"])
def test_what_is_not_an_event_fails_as_event(raw: bytes) -> None:
    failure = failed_check(lambda: decode_announcement(raw, "ev.json"))
    assert failure.check == "event"
    assert failure.detail.startswith("ev.json is not a Nostr event: ")


def test_an_announcement_round_trips() -> None:
    event = announcement()
    assert decode_announcement(msgspec.json.encode(event), "ev.json") == event


def test_a_failure_is_a_value_error_naming_its_check() -> None:
    failure = ProofCheckFailed("proof path", "folds elsewhere")
    assert isinstance(failure, ValueError)
    assert (failure.check, failure.detail, str(failure)) == (
        "proof path",
        "folds elsewhere",
        "proof path: folds elsewhere",
    )


def test_the_module_imports_no_click_and_no_io_library() -> None:
    probe = (
        "import sys, arkrelay_core.settlement.proofcheck; "
        "print(' '.join(sorted(m for m in ('click', 'trio', 'trio_websocket', "
        "'urllib.request', 'http.client', 'httpx', 'sqlalchemy') if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
