"""Checking a settlement's merkle proof against the gateway's signed 31342 (docs/settlement.md).

Values in, a :class:`Verified` or a :class:`ProofCheckFailed` out: reading the documents
is the caller's, so the same checks serve ``arkrelay settlement verify`` and anything else
that holds a proof and an event. Neither input is trusted: the event must be signed by the
gateway's key, name the proof's settlement, and commit to the root the proof's path folds to.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from ..nostr import (
    Event,
    EventError,
    compute_event_id,
    decode_event,
    first_tag_value,
    schnorr_verify,
)
from ..protocol import Kind, L1Commitment
from .merkle import ProofStep, root_from_proof
from .merkle import path_sides as expected_sides

__all__ = [
    "ProofCheckFailed",
    "ProofDocument",
    "StepDocument",
    "Verified",
    "decode_announcement",
    "decode_proof",
    "expected_sides",
    "verify_commitment",
]

Hex32 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$", max_length=64)]


class ProofCheckFailed(ValueError):
    """A check did not hold: the transaction is not shown committed.

    A ValueError rather than an ArkRelayError: the verifier runs outside the gateway, and
    no wallet ever sees this, so there is no PROTOCOL.md code to carry.
    """

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


class StepDocument(ProofStep, frozen=True):
    # merkle's step takes any string; a document's must be the hash it claims to be, so a
    # malformed one fails as "proof" when read rather than later, mid-fold.
    hash: Hex32


class ProofDocument(msgspec.Struct, frozen=True):
    """The fields of ``GET /settlements/{id}/proof/{txid}`` a verification relies on (the
    others, such as ``l1_txid``, are the gateway's word; the 31342 is its signature)."""

    settlement_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    ark_txid: Hex32
    index: Annotated[int, msgspec.Meta(ge=0)]
    count: Annotated[int, msgspec.Meta(ge=1)]
    path: list[StepDocument]
    merkle_root: Hex32


class Verified(msgspec.Struct, frozen=True):
    proof: ProofDocument
    event: Event
    commitment: L1Commitment


def decode_proof(raw: bytes, source: str) -> ProofDocument:
    try:
        return msgspec.json.decode(raw, type=ProofDocument)
    except msgspec.DecodeError as exc:
        raise ProofCheckFailed("proof", f"{source} is not a settlement proof: {exc}") from None


def decode_announcement(raw: bytes, source: str) -> Event:
    """The event JSON of a 31342; only its form is checked here, the rest by
    :func:`verify_commitment`."""
    try:
        return decode_event(raw)
    except EventError as exc:
        raise ProofCheckFailed("event", f"{source} is not a Nostr event: {exc}") from None


def verify_commitment(proof: ProofDocument, event: Event, gateway: str | None) -> Verified:
    """Every check, in order; raise :class:`ProofCheckFailed` naming the first that fails.
    ``gateway`` is the hex key the event must be signed by, or None to accept any author."""
    try:
        event_id = compute_event_id(
            event.pubkey, event.created_at, event.kind, event.tags, event.content
        )
    except EventError as exc:
        raise ProofCheckFailed("event id", str(exc)) from None
    if event_id != event.id:
        raise ProofCheckFailed(
            "event id", f"{event.id} is not the hash of the event (it is {event_id})"
        )
    if not schnorr_verify(
        bytes.fromhex(event.pubkey), bytes.fromhex(event.id), bytes.fromhex(event.sig)
    ):
        raise ProofCheckFailed("event signature", f"not a valid BIP340 signature by {event.pubkey}")
    if event.kind != Kind.L1_COMMITMENT:
        raise ProofCheckFailed("event kind", f"{event.kind}, not {int(Kind.L1_COMMITMENT)}")
    if gateway is not None and event.pubkey != gateway:
        raise ProofCheckFailed("event author", f"{event.pubkey} is not the gateway {gateway}")
    wanted_d = f"l1:{proof.settlement_id}"
    found_d = first_tag_value(event, "d")
    if found_d != wanted_d:
        raise ProofCheckFailed("event d tag", f"{found_d!r}, expected {wanted_d!r}")
    try:
        commitment = msgspec.json.decode(event.content, type=L1Commitment)
    except msgspec.DecodeError as exc:
        raise ProofCheckFailed("event content", f"not an L1 commitment: {exc}") from None
    if commitment.merkle_root_of_l2_txs != proof.merkle_root:
        raise ProofCheckFailed(
            "merkle root",
            f"the event commits to {commitment.merkle_root_of_l2_txs}, "
            f"the proof is for {proof.merkle_root}",
        )
    if commitment.l2_tx_count != proof.count:
        raise ProofCheckFailed(
            "l2_tx_count",
            f"the event commits to {commitment.l2_tx_count} transactions, "
            f"the proof's tree has {proof.count}",
        )
    try:
        sides = expected_sides(proof.index, proof.count)
    except ValueError as exc:
        raise ProofCheckFailed("proof shape", str(exc)) from None
    found_sides = [step.side for step in proof.path]
    if found_sides != sides:
        raise ProofCheckFailed(
            "proof shape",
            f"leaf {proof.index} of {proof.count} has a path of {len(sides)} steps with "
            f"siblings {sides}; this one has {len(found_sides)}: {found_sides}",
        )
    folded = root_from_proof(proof.ark_txid, proof.path)
    if folded != commitment.merkle_root_of_l2_txs:
        raise ProofCheckFailed(
            "proof path",
            f"the path folds {proof.ark_txid}'s leaf to {folded}, "
            f"not to the committed root {commitment.merkle_root_of_l2_txs}",
        )
    return Verified(proof, event, commitment)
