"""NIP-19 bech32 entities."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arkrelay_core.nostr import Nip19Error, generate_secret_key, nip19, xonly_public_key
from arkrelay_core.nostr.nip19 import (
    Decoded,
    decode,
    decode_pubkey,
    encode_nevent,
    encode_note,
    encode_nprofile,
    encode_npub,
    encode_nsec,
)

# The examples in NIP-19 itself.
SPEC_NPUB = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"
SPEC_NPUB_HEX = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"
SPEC_NPUB_2 = "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6"
SPEC_NPUB_2_HEX = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d"
SPEC_NSEC = "nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5"
SPEC_NSEC_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
SPEC_NPROFILE = (
    "nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gpp4mhxue69uhhytnc9e3k7mgp"
    "z4mhxue69uhkg6nzv9ejuumpv34kytnrdaksjlyr9p"
)
SPEC_NPROFILE_RELAYS = ("wss://r.x.com", "wss://djbas.sadkb.com")

EVENT_ID = "b9f5441e45ca39179320e0031cfb18e34078673dcc3d3e3a3b3a981760aa5696"


def _raw(prefix: str, payload: bytes) -> str:
    # Crafts well-checksummed strings with payloads the public encoders refuse to build.
    return nip19._bech32_encode(prefix, payload)


def _flip_last(text: str) -> str:
    return text[:-1] + ("q" if text[-1] != "q" else "p")


# -- the NIP's examples ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "hex_value", "prefix"),
    [
        (SPEC_NPUB, SPEC_NPUB_HEX, "npub"),
        (SPEC_NPUB_2, SPEC_NPUB_2_HEX, "npub"),
        (SPEC_NSEC, SPEC_NSEC_HEX, "nsec"),
    ],
    ids=["npub", "npub-2", "nsec"],
)
def test_spec_examples_decode_and_encode(encoded: str, hex_value: str, prefix: str) -> None:
    assert decode(encoded) == Decoded(prefix=prefix, data=hex_value)
    encoder = encode_nsec if prefix == "nsec" else encode_npub
    assert encoder(hex_value) == encoded


def test_spec_nprofile_example() -> None:
    decoded = decode(SPEC_NPROFILE)
    assert decoded.prefix == "nprofile"
    assert decoded.data == SPEC_NPUB_2_HEX
    assert decoded.relays == SPEC_NPROFILE_RELAYS
    # We write TLV entries in type order, as the NIP's example does.
    assert encode_nprofile(SPEC_NPUB_2_HEX, SPEC_NPROFILE_RELAYS) == SPEC_NPROFILE


def test_nsec_accepts_bytes_and_hides_the_key_in_repr() -> None:
    assert encode_nsec(bytes.fromhex(SPEC_NSEC_HEX)) == SPEC_NSEC
    decoded = decode(SPEC_NSEC)
    assert SPEC_NSEC_HEX not in repr(decoded)
    assert "<redacted>" in repr(decoded)
    assert SPEC_NPUB_HEX in repr(decode(SPEC_NPUB))


def test_uppercase_string_decodes() -> None:
    assert decode(SPEC_NPUB.upper()).data == SPEC_NPUB_HEX


# -- round trips -----------------------------------------------------------------------------


def test_note_round_trip() -> None:
    assert decode(encode_note(EVENT_ID)) == Decoded(prefix="note", data=EVENT_ID)


def test_nevent_round_trip_with_every_field() -> None:
    relays = ("wss://relay.one", "wss://relay.two/path?x=1", "wss://ünïcode.example")
    encoded = encode_nevent(EVENT_ID, relays, author=SPEC_NPUB_HEX, kind=31510)
    assert len(encoded) > 90  # past BIP-173's limit, which is why the codec is local
    assert decode(encoded) == Decoded(
        prefix="nevent", data=EVENT_ID, relays=relays, author=SPEC_NPUB_HEX, kind=31510
    )


def test_nevent_minimal_and_nprofile_without_relays() -> None:
    assert decode(encode_nevent(EVENT_ID)) == Decoded(prefix="nevent", data=EVENT_ID)
    assert decode(encode_nprofile(SPEC_NPUB_HEX)) == Decoded(prefix="nprofile", data=SPEC_NPUB_HEX)


def test_unknown_tlv_entries_are_ignored() -> None:
    payload = bytes([0, 32]) + bytes.fromhex(EVENT_ID) + bytes([9, 3]) + b"abc"
    assert decode(_raw("nevent", payload)) == Decoded(prefix="nevent", data=EVENT_ID)


# -- decode errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_flip_last(SPEC_NPUB), "bad checksum"),
        (_raw("nfoo", bytes(32)), "unknown prefix 'nfoo'"),
        (_raw("npub", bytes(31)), "npub payload must be 32 bytes, got 31"),
        (_raw("note", bytes(33)), "note payload must be 32 bytes, got 33"),
        (_raw("nsec", b""), "nsec payload must be 32 bytes, got 0"),
        (SPEC_NPUB[:10] + SPEC_NPUB[10:].upper(), "mixes upper and lower case"),
        (SPEC_NPUB.replace("0", "b", 1), "invalid bech32 character 'b'"),
        ("npub" + SPEC_NPUB[5:], "no prefix and '1' separator"),
        ("npub1qqqqq", "too short for its checksum"),
        ("npub1 " + SPEC_NPUB[5:], "outside printable ASCII"),
        ("npub1" + "q" * 5000, "longer than 5000"),
        (_raw("nprofile", bytes([1, 3]) + b"wss"), "nprofile has no TLV 0 (pubkey)"),
        (_raw("nprofile", bytes([0, 31]) + bytes(31)), "nprofile pubkey must be 32 bytes, got 31"),
        (_raw("nevent", bytes([0, 32]) + bytes(31)), "TLV 0 claims 32 bytes but only 31 remain"),
        (_raw("nevent", bytes([0, 32]) + bytes(32) + b"\x01"), "truncated TLV entry"),
        (
            _raw("nevent", bytes([0, 32]) + bytes(32) + bytes([3, 2, 0, 1])),
            "nevent kind must be 4 bytes, got 2",
        ),
        (
            _raw("nevent", bytes([0, 32]) + bytes(32) + bytes([2, 3]) + b"abc"),
            "nevent author payload must be 32 bytes, got 3",
        ),
        (_raw("nprofile", bytes([0, 32]) + bytes(32) + b"\x01\x01\xff"), "relay URL is not valid"),
    ],
    ids=[
        "bad-checksum",
        "unknown-prefix",
        "npub-31-bytes",
        "note-33-bytes",
        "nsec-empty",
        "mixed-case",
        "bad-character",
        "no-separator",
        "too-short",
        "space",
        "too-long",
        "nprofile-no-pubkey",
        "nprofile-short-pubkey",
        "tlv-overrun",
        "tlv-truncated-header",
        "nevent-kind-2-bytes",
        "nevent-short-author",
        "relay-not-utf8",
    ],
)
def test_decode_errors(text: str, message: str) -> None:
    with pytest.raises(Nip19Error, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode(text)


def test_bech32m_checksum_is_not_accepted() -> None:
    # Same data, checksum computed with the bech32m constant (BIP-350) instead of 1.
    prefix, words = "npub", nip19._convert_bits(bytes.fromhex(SPEC_NPUB_HEX), 8, 5, pad=True)
    values = [*nip19._hrp_expand(prefix), *words, 0, 0, 0, 0, 0, 0]
    polymod = nip19._polymod(values) ^ 0x2BC830A3
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = prefix + "1" + "".join(nip19._CHARSET[w] for w in words + checksum)
    with pytest.raises(Nip19Error, match="bad checksum"):
        decode(text)


def test_non_zero_padding_bits_are_rejected() -> None:
    # 32 bytes are 256 bits = 51 words + 4 padding bits; set one of those padding bits.
    words = nip19._convert_bits(bytes.fromhex(SPEC_NPUB_HEX), 8, 5, pad=True)
    words[-1] |= 1
    values = [*nip19._hrp_expand("npub"), *words, 0, 0, 0, 0, 0, 0]
    polymod = nip19._polymod(values) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = "npub1" + "".join(nip19._CHARSET[w] for w in words + checksum)
    with pytest.raises(Nip19Error, match="padding"):
        decode(text)


# -- encode errors ---------------------------------------------------------------------------


def test_encode_errors() -> None:
    with pytest.raises(Nip19Error, match="npub payload must be 32 bytes, got 31"):
        encode_npub("00" * 31)
    with pytest.raises(Nip19Error, match="npub payload is not hex"):
        encode_npub("zz" * 32)
    with pytest.raises(Nip19Error, match="nsec payload must be 32 bytes, got 33"):
        encode_nsec(bytes(33))
    with pytest.raises(Nip19Error, match="note payload must be hex text or bytes"):
        encode_note(None)  # type: ignore[arg-type]
    with pytest.raises(Nip19Error, match="at most 255 fit"):
        encode_nprofile(SPEC_NPUB_HEX, ["wss://" + "a" * 250])
    with pytest.raises(Nip19Error, match="not one string"):
        encode_nprofile(SPEC_NPUB_HEX, "wss://relay.example")
    with pytest.raises(Nip19Error, match="kind"):
        encode_nevent(EVENT_ID, kind=-1)
    with pytest.raises(Nip19Error, match="kind"):
        encode_nevent(EVENT_ID, kind=2**32)
    with pytest.raises(Nip19Error, match="nevent author payload must be 32 bytes"):
        encode_nevent(EVENT_ID, author="ab")
    with pytest.raises(Nip19Error, match="over 5000"):
        encode_nprofile(SPEC_NPUB_HEX, ["wss://" + "a" * 240] * 20)


# -- decode_pubkey ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        SPEC_NPUB_HEX,
        SPEC_NPUB_HEX.upper(),
        SPEC_NPUB,
        SPEC_NPUB.upper(),
        f"  {SPEC_NPUB}\n",
        f"nostr:{SPEC_NPUB}",
    ],
    ids=["hex", "upper-hex", "npub", "upper-npub", "whitespace", "nostr-uri"],
)
def test_decode_pubkey_accepts(value: str) -> None:
    assert decode_pubkey(value) == SPEC_NPUB_HEX


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (SPEC_NSEC, "got an nsec secret key"),
        (encode_note(EVENT_ID), "64 hex characters or an npub"),
        ("ff" * 32, "not a valid secp256k1 public key"),
        (encode_npub("ff" * 32), "not a valid secp256k1 public key"),
        (SPEC_NPUB_HEX[:-1], "64 hex characters or an npub"),
        (_flip_last(SPEC_NPUB), "bad checksum"),
        ("", "64 hex characters or an npub"),
    ],
    ids=["nsec", "note", "hex-off-curve", "npub-off-curve", "short-hex", "bad-npub", "empty"],
)
def test_decode_pubkey_rejects(value: str, message: str) -> None:
    with pytest.raises(Nip19Error, match=message):
        decode_pubkey(value)


# -- properties ------------------------------------------------------------------------------

hex32 = st.binary(min_size=32, max_size=32).map(bytes.hex)
relay = st.text(max_size=60).filter(lambda r: len(r.encode()) <= 255)


@settings(max_examples=100, deadline=None)
@given(value=hex32, prefix=st.sampled_from(["npub", "nsec", "note"]))
def test_bare_round_trip_property(value: str, prefix: str) -> None:
    encoder = {"npub": encode_npub, "nsec": encode_nsec, "note": encode_note}[prefix]
    encoded = encoder(value)
    assert encoded.startswith(prefix + "1")
    assert decode(encoded) == Decoded(prefix=prefix, data=value)


@settings(max_examples=100, deadline=None)
@given(
    event_id=hex32,
    relays=st.lists(relay, max_size=5).map(tuple),
    author=st.none() | hex32,
    kind=st.none() | st.integers(0, 2**32 - 1),
)
def test_tlv_round_trip_property(
    event_id: str, relays: tuple[str, ...], author: str | None, kind: int | None
) -> None:
    assert decode(encode_nevent(event_id, relays, author=author, kind=kind)) == Decoded(
        prefix="nevent", data=event_id, relays=relays, author=author, kind=kind
    )
    assert decode(encode_nprofile(event_id, relays)) == Decoded(
        prefix="nprofile", data=event_id, relays=relays
    )


def test_decode_pubkey_round_trips_real_keys() -> None:
    pubkey = xonly_public_key(generate_secret_key()).hex()
    assert decode_pubkey(encode_npub(pubkey)) == pubkey
