"""Issuance proofs: an asset's genesis, signed by its issuer.

The asset id is a tagged SHA-256 of the genesis (msgpack, fields in a fixed order), so the
id commits to the name, supply, decimals, metadata, anchor and issuer key; the issuer's
BIP340 signature is over the id. A proof can therefore be neither forged for an asset
someone else issued nor altered on the way. This is the example's own format, not tapd's.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import msgspec
from arkrelay_core.nostr import schnorr_sign, schnorr_verify, xonly_public_key

__all__ = [
    "MAGIC",
    "Genesis",
    "ProofError",
    "asset_id_of",
    "decode_proof",
    "encode_proof",
    "mint_problem",
]

MAGIC = b"arkrelay-example-assets proof v1\x00"
_TAG = hashlib.sha256(b"arkrelay-example-assets/genesis").digest()
#: A proof is a few hundred bytes; a larger blob is refused before decoding.
MAX_PROOF_BYTES = 4096
#: tapd's limits on a name and on decimal places; an amount is a signed 64-bit count.
MAX_NAME_CHARS = 64
MAX_DECIMALS = 16
AMOUNT_LIMIT = 2**63


class ProofError(ValueError):
    """A proof that does not decode or does not verify."""


class Genesis(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    #: ``txid:vout`` of the minting transaction's output that anchors the asset.
    anchor: str
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
    decimals: Annotated[int, msgspec.Meta(ge=0, le=MAX_DECIMALS)]
    amount: Annotated[int, msgspec.Meta(ge=1, le=AMOUNT_LIMIT - 1)]
    meta: bytes
    #: The issuer's x-only public key (32 bytes).
    issuer: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class _Proof(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    genesis: Genesis
    signature: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]


def mint_problem(name: str, amount: int, decimals: int) -> str | None:
    """Why a genesis with these values would not decode (the limits above), or None."""
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        return f"a name has 1 to {MAX_NAME_CHARS} characters"
    if not 1 <= amount < AMOUNT_LIMIT:
        return f"the amount must be at least 1 and below 2**63, not {amount}"
    if not 0 <= decimals <= MAX_DECIMALS:
        return f"decimals must be 0 to {MAX_DECIMALS}, not {decimals}"
    return None


def asset_id_of(genesis: Genesis) -> bytes:
    return hashlib.sha256(_TAG + _TAG + msgspec.msgpack.encode(genesis)).digest()


def encode_proof(genesis: Genesis, issuer_secret: bytes) -> bytes:
    """The proof of ``genesis``, signed with the issuer's secret key."""
    if xonly_public_key(issuer_secret) != genesis.issuer:
        raise ValueError("the genesis names another issuer")
    signature = schnorr_sign(issuer_secret, asset_id_of(genesis))
    return MAGIC + msgspec.msgpack.encode(_Proof(genesis, signature))


def decode_proof(proof: bytes) -> tuple[bytes, Genesis]:
    """(asset id, genesis) of a proof that verifies; ProofError otherwise."""
    if len(proof) > MAX_PROOF_BYTES or not proof.startswith(MAGIC):
        raise ProofError("not an arkrelay-example-assets proof")
    try:
        decoded = msgspec.msgpack.decode(proof[len(MAGIC) :], type=_Proof)
    except msgspec.DecodeError as exc:
        raise ProofError(f"malformed proof: {exc}") from exc
    asset_id = asset_id_of(decoded.genesis)
    if not schnorr_verify(decoded.genesis.issuer, asset_id, decoded.signature):
        raise ProofError("the issuer's signature does not verify")
    return asset_id, decoded.genesis
