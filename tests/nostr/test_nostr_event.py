"""NIP-01 events: canonical serialisation, signing, verification, parsing."""

from __future__ import annotations

import hashlib
import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arkrelay_core.nostr import (
    Event,
    EventError,
    compute_event_id,
    decode_event,
    encode_event,
    first_tag_value,
    generate_secret_key,
    serialize_for_id,
    sign_event,
    tag_values,
    verify_event,
    xonly_public_key,
)
from arkrelay_core.nostr.bip340 import SigningKey

SECRET = bytes.fromhex("b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfef")
PUBKEY = xonly_public_key(SECRET).hex()
OTHER_PUBKEY = xonly_public_key(generate_secret_key()).hex()


def _flip_hex(value: str, index: int = 0) -> str:
    flipped = "1" if value[index] == "0" else "0"
    return value[:index] + flipped + value[index + 1 :]


@pytest.fixture
def event() -> Event:
    return sign_event(
        SECRET,
        kind=31510,
        content='{"action_id":"a1"}',
        tags=[["d", "a1"], ["p", OTHER_PUBKEY], ["p", PUBKEY, "wss://relay.example"]],
        created_at=1_700_000_000,
    )


# -- serialisation ---------------------------------------------------------------------------


def test_serialization_escapes_like_json_stringify() -> None:
    content = 'q"b\\s\n\t\r\b\f\x00\x1f\x7f\u2028\u2029é😀'
    raw = serialize_for_id(PUBKEY, 1, 1, [["t", "x\ny"]], content)
    # Written out by hand from the rules of JSON.stringify: short escapes for the five
    # classic controls, \u00xx (lowercase) for the other C0 controls, all else verbatim.
    expected = (
        f'[0,"{PUBKEY}",1,1,[["t","x\\ny"]],'
        '"q\\"b\\\\s\\n\\t\\r\\b\\f\\u0000\\u001f\x7f\u2028\u2029é😀"]'
    )
    assert raw == expected.encode("utf-8")


def test_event_id_is_sha256_of_serialization() -> None:
    raw = serialize_for_id(PUBKEY, 5, 1, [], "hi")
    assert raw == f'[0,"{PUBKEY}",5,1,[],"hi"]'.encode()
    assert compute_event_id(PUBKEY, 5, 1, [], "hi") == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize(
    ("pubkey", "created_at", "kind", "tags", "content"),
    [
        (PUBKEY.upper(), 1, 1, [], ""),
        (PUBKEY[:-2], 1, 1, [], ""),
        (PUBKEY, -1, 1, [], ""),
        (PUBKEY, 2**53, 1, [], ""),
        (PUBKEY, True, 1, [], ""),
        (PUBKEY, 1, 65536, [], ""),
        (PUBKEY, 1, "1", [], ""),
        (PUBKEY, 1, 1, [["p", 1]], ""),
        (PUBKEY, 1, 1, ["p"], ""),
        (PUBKEY, 1, 1, "p", ""),
        (PUBKEY, 1, 1, [], None),
        (PUBKEY, 1, 1, [], "lone \ud800 surrogate"),
        (PUBKEY, 1, 1, [["t", "\udfff"]], ""),
    ],
    ids=[
        "uppercase-pubkey",
        "short-pubkey",
        "negative-time",
        "time-beyond-js-safe-integer",
        "bool-time",
        "kind-too-big",
        "kind-as-text",
        "non-string-tag-item",
        "tag-not-a-list",
        "tags-a-string",
        "content-none",
        "lone-surrogate-content",
        "lone-surrogate-tag",
    ],
)
def test_serialization_rejects_bad_fields(
    pubkey: object, created_at: object, kind: object, tags: object, content: object
) -> None:
    with pytest.raises(EventError):
        serialize_for_id(pubkey, created_at, kind, tags, content)  # type: ignore[arg-type]


# -- signing and verification ----------------------------------------------------------------


def test_signed_event_verifies(event: Event) -> None:
    assert event.pubkey == PUBKEY
    assert len(event.id) == 64 and event.id == event.id.lower()
    assert len(event.sig) == 128 and event.sig == event.sig.lower()
    assert event.id == compute_event_id(
        event.pubkey, event.created_at, event.kind, event.tags, event.content
    )
    assert verify_event(event)


def test_sign_event_defaults_created_at_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("arkrelay_core.nostr.event.time.time", lambda: 1_700_000_123.9)
    event = sign_event(SECRET, kind=1, content="now")
    assert event.created_at == 1_700_000_123
    assert event.tags == []
    assert verify_event(event)


def test_sign_event_with_a_prepared_key_is_the_same_event() -> None:
    key = SigningKey(SECRET)
    event = sign_event(key, kind=7, content="+", tags=[["e", "ab" * 32]], created_at=5)
    from_bytes = sign_event(SECRET, kind=7, content="+", tags=[["e", "ab" * 32]], created_at=5)
    assert event.pubkey == PUBKEY
    # BIP340 signatures carry fresh randomness; everything else is identical.
    assert msgspec.structs.replace(event, sig=from_bytes.sig) == from_bytes
    assert verify_event(event) and verify_event(from_bytes)


def test_sign_event_accepts_tuple_tags() -> None:
    event = sign_event(SECRET, kind=1, content="", tags=(("e", "x"), ("p", "y")), created_at=1)
    assert event.tags == [["e", "x"], ["p", "y"]]
    assert verify_event(event)


def test_sign_event_refuses_unencodable_content() -> None:
    with pytest.raises(EventError, match="surrogate"):
        sign_event(SECRET, kind=1, content="\udc00", created_at=1)


@pytest.mark.parametrize(
    "changes",
    [
        {"content": "tampered"},
        {"kind": 31511},
        {"created_at": 1_700_000_001},
        {"tags": [["d", "a2"]]},
        {"pubkey": OTHER_PUBKEY},
        {"id": "flip"},
        {"sig": "flip-r"},
        {"sig": "flip-s"},
    ],
    ids=["content", "kind", "created_at", "tags", "pubkey", "id", "sig-r", "sig-s"],
)
def test_tampered_event_fails(event: Event, changes: dict[str, object]) -> None:
    if changes.get("id") == "flip":
        changes = {"id": _flip_hex(event.id, 10)}
    elif changes.get("sig") == "flip-r":
        changes = {"sig": _flip_hex(event.sig, 5)}
    elif changes.get("sig") == "flip-s":
        changes = {"sig": _flip_hex(event.sig, 100)}
    assert not verify_event(msgspec.structs.replace(event, **changes))


def test_event_with_recomputed_id_but_old_signature_fails(event: Event) -> None:
    content = "swapped"
    new_id = compute_event_id(event.pubkey, event.created_at, event.kind, event.tags, content)
    assert not verify_event(msgspec.structs.replace(event, content=content, id=new_id))


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "ab"},
        {"id": "zz" * 32},
        {"sig": "00" * 63},
        {"sig": "00" * 65},
        {"pubkey": "00" * 31},
        {"pubkey": "ff" * 32},
        {"id": None},
        {"sig": 5},
        {"kind": "1"},
        {"tags": "not a list"},
        {"content": b"bytes"},
        {"created_at": -5},
    ],
    ids=[
        "short-id",
        "non-hex-id",
        "short-sig",
        "long-sig",
        "short-pubkey",
        "pubkey-off-curve",
        "id-none",
        "sig-int",
        "kind-str",
        "tags-str",
        "content-bytes",
        "negative-time",
    ],
)
def test_malformed_event_is_invalid_without_raising(
    event: Event, changes: dict[str, object]
) -> None:
    assert verify_event(msgspec.structs.replace(event, **changes)) is False


def test_pubkey_off_the_curve_is_invalid_even_with_matching_id(event: Event) -> None:
    pubkey = "ff" * 32
    event_id = compute_event_id(pubkey, event.created_at, event.kind, event.tags, event.content)
    assert verify_event(msgspec.structs.replace(event, pubkey=pubkey, id=event_id)) is False


def test_uppercase_hex_is_invalid(event: Event) -> None:
    assert not verify_event(msgspec.structs.replace(event, id=event.id.upper()))
    assert not verify_event(msgspec.structs.replace(event, sig=event.sig.upper()))


def test_verify_rejects_non_events() -> None:
    assert verify_event({"id": "00" * 32}) is False  # type: ignore[arg-type]
    assert verify_event(None) is False  # type: ignore[arg-type]


# -- JSON ------------------------------------------------------------------------------------


def test_encode_decode_round_trip(event: Event) -> None:
    raw = encode_event(event)
    assert json.loads(raw) == {
        "id": event.id,
        "pubkey": event.pubkey,
        "created_at": event.created_at,
        "kind": event.kind,
        "tags": event.tags,
        "content": event.content,
        "sig": event.sig,
    }
    assert b" " not in raw
    assert decode_event(raw) == event
    assert decode_event(raw.decode()) == event


def test_decode_ignores_unknown_fields(event: Event) -> None:
    doc = json.loads(encode_event(event))
    doc["seen_on"] = ["wss://relay.example"]
    assert decode_event(json.dumps(doc)) == event


def _doc(event: Event, **changes: object) -> str:
    doc = json.loads(encode_event(event))
    for key, value in changes.items():
        if value is KeyError:
            del doc[key]
        else:
            doc[key] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    "changes",
    [
        {"id": KeyError},
        {"sig": KeyError},
        {"id": "AB" * 32},
        {"id": "ab" * 31},
        {"pubkey": "ab" * 32 + "\n"},
        {"sig": "ab" * 63},
        {"kind": 65536},
        {"kind": -1},
        {"kind": True},
        {"kind": "1"},
        {"created_at": -1},
        {"created_at": 1.5},
        {"created_at": 2**53},
        {"tags": [["p", 1]]},
        {"tags": ["p"]},
        {"tags": None},
        {"content": 5},
    ],
    ids=[
        "missing-id",
        "missing-sig",
        "uppercase-id",
        "short-id",
        "pubkey-trailing-newline",
        "short-sig",
        "kind-too-big",
        "kind-negative",
        "kind-bool",
        "kind-string",
        "time-negative",
        "time-float",
        "time-too-big",
        "tag-item-int",
        "tag-not-list",
        "tags-null",
        "content-int",
    ],
)
def test_decode_rejects_bad_shapes(event: Event, changes: dict[str, object]) -> None:
    with pytest.raises(EventError) as info:
        decode_event(_doc(event, **changes))
    assert info.value.code == 1001


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b"null", b'{"id": "x"', b'{"content": "\xff"}', "not json"],
    ids=["empty", "truncated", "array", "null", "unterminated", "invalid-utf8", "text"],
)
def test_decode_rejects_malformed_json(raw: bytes | str) -> None:
    with pytest.raises(EventError, match="malformed event"):
        decode_event(raw)


# -- tags ------------------------------------------------------------------------------------


def test_tag_helpers(event: Event) -> None:
    assert first_tag_value(event, "d") == "a1"
    assert first_tag_value(event, "p") == OTHER_PUBKEY
    assert tag_values(event, "p") == [OTHER_PUBKEY, PUBKEY]
    assert first_tag_value(event, "e") is None
    assert tag_values(event, "e") == []


def test_tag_helpers_skip_tags_without_value() -> None:
    event = sign_event(SECRET, kind=1, content="", tags=[["p"], [], ["p", "x"]], created_at=1)
    assert first_tag_value(event, "p") == "x"
    assert tag_values(event, "p") == ["x"]


# -- properties ------------------------------------------------------------------------------

tags_strategy = st.lists(st.lists(st.text(max_size=20), max_size=4), max_size=6)


@settings(max_examples=60, deadline=None)
@given(
    content=st.text(max_size=300),
    tags=tags_strategy,
    kind=st.integers(0, 65535),
    created_at=st.integers(0, 2**53 - 1),
)
def test_sign_verify_round_trip_property(
    content: str, tags: list[list[str]], kind: int, created_at: int
) -> None:
    event = sign_event(SECRET, kind=kind, content=content, tags=tags, created_at=created_at)
    assert verify_event(event)
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert verify_event(decoded)
    assert not verify_event(msgspec.structs.replace(event, content=content + "x"))
