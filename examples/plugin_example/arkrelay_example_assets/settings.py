"""Operator settings (``[backend.assets] plugin = "example-assets"``)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from arkrelay_core.config import Duration, Secret
from arkrelay_core.nostr import KeyFormatError, xonly_public_key

__all__ = ["ExampleAssetsSettings"]


class ExampleAssetsSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """How the in-memory issuer behaves.

    ``forbid_unknown_fields`` turns an operator's typo into an error at start-up that names
    the key; ``Duration`` and ``Secret`` get the gateway's syntax (``"30s"``, ``"env:NAME"``)
    and its masking in ``arkrelay config check``.
    """

    #: How often the in-memory chain mines a block on its own; ``0`` never (blocks come
    #: only from ``backend.chain.mine``, as the tests do).
    block_interval: Duration = Duration(60)
    #: Blocks a minting transaction needs before its units count in balances.
    confirmations: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    #: The hex secret key that signs this issuer's proofs. Unset: a fresh key at each start,
    #: so proofs exported before a restart name an issuer the next run cannot sign for.
    issuer_key: Secret | None = None

    def __post_init__(self) -> None:
        if self.issuer_key is not None:
            issuer_secret(self.issuer_key)


def issuer_secret(key: Secret) -> bytes:
    """The 32-byte secret a Secret holds; ValueError when it is not a valid key."""
    try:
        secret = bytes.fromhex(key.reveal())
        xonly_public_key(secret)
    except (ValueError, KeyFormatError):
        raise ValueError("issuer_key must be a secp256k1 secret key in 64 hex characters") from None
    return secret
