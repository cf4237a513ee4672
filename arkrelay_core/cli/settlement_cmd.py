"""``arkrelay settlement verify``: check, from outside the gateway, that an ark transaction is
committed by a settlement the gateway announced (docs/settlement.md).

Two inputs: the merkle proof (``GET /settlements/{id}/proof/{txid}``, or a file holding
it) and the gateway's signed 31342 (a file, or fetched from a relay). Neither is trusted:
the event must be signed by the gateway's key, name the proof's settlement, and commit to
the root the proof's path folds to. Exit status: 0 verified, 1 a check failed, 2 a usage
error, 3 an input could not be read or fetched.

The checks are :mod:`arkrelay_core.settlement.proofcheck`'s, the reading and fetching
:mod:`.settlement_fetch`'s; this module is the command and its exit statuses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

import click
import trio

from ..nostr import Event, Nip19Error, decode_pubkey, encode_npub
from ..settlement.merkle import commitment_payload
from ..settlement.proofcheck import (
    ProofCheckFailed,
    ProofDocument,
    Verified,
    decode_announcement,
    decode_proof,
    verify_commitment,
)
from .settlement_fetch import deadline, fetch_commitment, read_document, read_file

__all__ = ["CheckFailed", "report", "settlement"]


class CheckFailed(click.ClickException):
    """A check did not hold: the transaction is not shown committed (exit status 1)."""

    exit_code = 1

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"verification failed: {check}: {detail}")
        self.check = check


@contextlib.contextmanager
def _failed_check_exits() -> Iterator[None]:
    """The checks know nothing of click; here a failed one becomes exit status 1."""
    try:
        yield
    except ProofCheckFailed as exc:
        raise CheckFailed(exc.check, exc.detail) from None


def _when(seconds: int) -> str:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (not a date)"


def report(verified: Verified) -> Sequence[str]:
    proof, event, commitment = verified.proof, verified.event, verified.commitment
    lines = [
        f"verified: ark tx {proof.ark_txid}",
        f"  is leaf {proof.index} of {proof.count} of settlement {proof.settlement_id}",
        f"  merkle root   {commitment.merkle_root_of_l2_txs}",
        f"  l1 txid       {commitment.l1_txid}",
        f"  block height  {commitment.block_height}",
        f"  period        {_when(commitment.period_start)} .. {_when(commitment.period_end)}",
        f"  announced by  {encode_npub(event.pubkey)} in 31342 {event.id}",
    ]
    if proof.settlement_id.startswith("anchor-"):
        payload = commitment_payload(commitment.merkle_root_of_l2_txs).hex()
        lines.append(f"  OP_RETURN     {payload} (look for it in {commitment.l1_txid})")
    return lines


@click.group("settlement")
def settlement() -> None:
    """Check the gateway's L1 settlements (see docs/settlement.md)."""


@settlement.command("verify")
@click.option(
    "--proof",
    "proof_source",
    required=True,
    metavar="FILE|URL",
    help="The merkle proof: a JSON file, or the URL of the gateway's "
    "GET /settlements/{id}/proof/{ark_txid}.",
)
@click.option(
    "--event",
    "event_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The gateway's 31342 for the proof's settlement, as event JSON.",
)
@click.option(
    "--relay",
    default=None,
    metavar="ws(s)://...",
    help="Fetch the 31342 from this relay instead (needs --gateway).",
)
@click.option(
    "--gateway",
    "gateway_key",
    default=None,
    metavar="HEX|NPUB",
    help="The gateway's service key: the event must be signed by it.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=600),
    default=30.0,
    show_default=True,
    help="Seconds allowed for each fetch (proof URL, relay query).",
)
def verify(
    proof_source: str,
    event_file: Path | None,
    relay: str | None,
    gateway_key: str | None,
    timeout: float,
) -> None:
    """Verify that a settlement the gateway announced commits to an ark transaction.

    Checks the 31342's id and signature, its kind, its author (--gateway), that its d tag
    names the proof's settlement, that its merkle root and transaction count are the
    proof's, and that the proof's path folds the transaction's leaf to that root.
    Exit status: 0 verified, 1 a check failed, 2 usage error, 3 an input was unavailable.
    """
    if (event_file is None) == (relay is None):
        raise click.UsageError("give the 31342 either with --event FILE or with --relay URL")
    gateway = None
    if gateway_key is not None:
        try:
            gateway = decode_pubkey(gateway_key)
        except (Nip19Error, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint="--gateway") from None
    if relay is not None:
        if gateway is None:
            raise click.UsageError(
                "--relay needs --gateway: anyone can publish a 31342 with that d tag"
            )
        if urllib.parse.urlsplit(relay).scheme.lower() not in ("ws", "wss"):
            raise click.BadParameter("not a ws:// or wss:// URL", param_hint="--relay")

    async def gather() -> tuple[ProofDocument, Event]:
        with deadline(timeout, proof_source):
            raw = await read_document(proof_source, "proof", socket_timeout=timeout)
        proof = decode_proof(raw, proof_source)
        if event_file is not None:
            return proof, decode_announcement(read_file(event_file, "event"), str(event_file))
        assert relay is not None and gateway is not None
        with deadline(timeout, relay):
            return proof, await fetch_commitment(relay, gateway, proof.settlement_id)

    with _failed_check_exits():
        proof, event = trio.run(gather)
        verified = verify_commitment(proof, event, gateway)
    for line in report(verified):
        click.echo(line)
    if gateway is None:
        click.echo(
            f"  note          the author was not checked: pass --gateway to require "
            f"{encode_npub(event.pubkey)}"
        )
