"""Nostr primitives for ArkRelay: NIP-01 events, BIP340, NIP-19, NIP-04 and NIP-44 v2.

Pure functions and values only: nothing here does I/O. The scheme modules ``nip04``,
``nip44`` and ``nip19`` are exported as modules because their ``encrypt`` / ``decrypt`` /
``decode`` names would clash at this level.
"""

from arkrelay_core.nostr import nip04, nip19, nip44
from arkrelay_core.nostr.bip340 import (
    generate_secret_key,
    is_valid_public_key,
    schnorr_sign,
    schnorr_verify,
    xonly_public_key,
)
from arkrelay_core.nostr.dm import (
    KeyCacheStatistics,
    Scheme,
    clear_key_cache,
    decrypt_dm,
    detect_scheme,
    encrypt_dm,
    key_cache_statistics,
)
from arkrelay_core.nostr.errors import (
    DecryptError,
    EventError,
    InvalidKeyError,
    InvalidMacError,
    InvalidPaddingError,
    InvalidPayloadError,
    InvalidPlaintextLengthError,
    KeyFormatError,
    Nip19Error,
    NostrError,
    UnsupportedVersionError,
)
from arkrelay_core.nostr.event import (
    Event,
    compute_event_id,
    decode_event,
    encode_event,
    first_tag_value,
    serialize_for_id,
    sign_event,
    tag_values,
    verify_event,
)
from arkrelay_core.nostr.nip19 import (
    Decoded,
    decode_pubkey,
    encode_nevent,
    encode_note,
    encode_nprofile,
    encode_npub,
    encode_nsec,
)

__all__ = [
    "Decoded",
    "DecryptError",
    "Event",
    "EventError",
    "InvalidKeyError",
    "InvalidMacError",
    "InvalidPaddingError",
    "InvalidPayloadError",
    "InvalidPlaintextLengthError",
    "KeyCacheStatistics",
    "KeyFormatError",
    "Nip19Error",
    "NostrError",
    "Scheme",
    "UnsupportedVersionError",
    "clear_key_cache",
    "compute_event_id",
    "decode_event",
    "decode_pubkey",
    "decrypt_dm",
    "detect_scheme",
    "encode_event",
    "encode_nevent",
    "encode_note",
    "encode_nprofile",
    "encode_npub",
    "encode_nsec",
    "encrypt_dm",
    "first_tag_value",
    "generate_secret_key",
    "is_valid_public_key",
    "key_cache_statistics",
    "nip04",
    "nip19",
    "nip44",
    "schnorr_sign",
    "schnorr_verify",
    "serialize_for_id",
    "sign_event",
    "tag_values",
    "verify_event",
    "xonly_public_key",
]
