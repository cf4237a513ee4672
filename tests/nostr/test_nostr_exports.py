"""The public surface of arkrelay_core.nostr is exactly the intended set of names."""

from __future__ import annotations

import types

import arkrelay_core.nostr as nostr
from arkrelay_core.nostr import errors

EXPECTED = {
    # events
    "Event",
    "compute_event_id",
    "decode_event",
    "encode_event",
    "first_tag_value",
    "serialize_for_id",
    "sign_event",
    "tag_values",
    "verify_event",
    # BIP340
    "generate_secret_key",
    "is_valid_public_key",
    "schnorr_sign",
    "schnorr_verify",
    "xonly_public_key",
    # NIP-19
    "Decoded",
    "decode_pubkey",
    "encode_nevent",
    "encode_note",
    "encode_nprofile",
    "encode_npub",
    "encode_nsec",
    # DMs
    "KeyCacheStatistics",
    "Scheme",
    "clear_key_cache",
    "decrypt_dm",
    "detect_scheme",
    "encrypt_dm",
    "key_cache_statistics",
    # scheme modules
    "nip04",
    "nip19",
    "nip44",
    # errors
    "DecryptError",
    "EventError",
    "InvalidKeyError",
    "InvalidMacError",
    "InvalidPaddingError",
    "InvalidPayloadError",
    "InvalidPlaintextLengthError",
    "KeyFormatError",
    "Nip19Error",
    "NostrError",
    "UnsupportedVersionError",
}


def test_exported_names_are_exactly_the_intended_set() -> None:
    assert set(nostr.__all__) == EXPECTED
    assert len(nostr.__all__) == len(EXPECTED)


def test_every_exported_name_resolves() -> None:
    for name in nostr.__all__:
        value = getattr(nostr, name)
        if name.startswith("nip"):
            assert isinstance(value, types.ModuleType)
        else:
            assert value.__module__.startswith("arkrelay_core.nostr"), name


def test_every_error_derives_from_nostr_error_and_the_tree_matches_the_docstring() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.NostrError)
        assert name in (errors.__doc__ or ""), f"{name} missing from the tree in the docstring"
    decrypt_errors = {
        errors.UnsupportedVersionError,
        errors.InvalidPayloadError,
        errors.InvalidMacError,
        errors.InvalidPaddingError,
        errors.InvalidPlaintextLengthError,
        errors.InvalidKeyError,
    }
    assert all(issubclass(cls, errors.DecryptError) and cls.code == 1007 for cls in decrypt_errors)
    assert issubclass(errors.InvalidKeyError, errors.KeyFormatError)
    assert errors.EventError.code == 1001
