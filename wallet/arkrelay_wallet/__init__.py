"""ArkRelay's reference wallet: the protocol over any Nostr relay, with a careful signer."""

from .checks import Careful, ChallengeRefused, Expectation, check_challenge, expectation_of
from .client import (
    OMIT,
    CeremonyTimeout,
    PublishRefused,
    Received,
    RelayError,
    SyncCheck,
    Wallet,
    WalletError,
    find_error,
)

__all__ = [
    "OMIT",
    "Careful",
    "CeremonyTimeout",
    "ChallengeRefused",
    "Expectation",
    "PublishRefused",
    "Received",
    "RelayError",
    "SyncCheck",
    "Wallet",
    "WalletError",
    "check_challenge",
    "expectation_of",
    "find_error",
]
