"""Scheme detection, DM encryption in both schemes, and the shared-key cache."""

from __future__ import annotations

import os

import pytest

from arkrelay_core.nostr import (
    DecryptError,
    InvalidKeyError,
    InvalidMacError,
    InvalidPayloadError,
    Scheme,
    clear_key_cache,
    decrypt_dm,
    detect_scheme,
    encrypt_dm,
    generate_secret_key,
    key_cache_statistics,
    nip04,
    nip44,
    xonly_public_key,
)
from arkrelay_core.nostr.dm import KEY_CACHE_SIZE

GATEWAY = generate_secret_key()
WALLET = generate_secret_key()
GATEWAY_PUB = xonly_public_key(GATEWAY).hex()
WALLET_PUB = xonly_public_key(WALLET).hex()


def test_detect_scheme() -> None:
    assert detect_scheme(nip04.encrypt(WALLET, GATEWAY_PUB, "x")) is Scheme.NIP04
    key = nip44.get_conversation_key(WALLET, GATEWAY_PUB)
    assert detect_scheme(nip44.encrypt("x", key)) is Scheme.NIP44
    assert detect_scheme("") is Scheme.NIP44


def test_decrypt_what_a_wallet_sends_in_either_scheme() -> None:
    body = '{"action":"get_info","request_id":"r1"}'
    as_nip04 = nip04.encrypt(WALLET, GATEWAY_PUB, body)
    as_nip44 = nip44.encrypt(body, nip44.get_conversation_key(WALLET, GATEWAY_PUB))
    assert decrypt_dm(GATEWAY, WALLET_PUB, as_nip04) == (body, Scheme.NIP04)
    assert decrypt_dm(GATEWAY, WALLET_PUB, as_nip44) == (body, Scheme.NIP44)


@pytest.mark.parametrize("scheme", [Scheme.NIP44, Scheme.NIP04, "nip44", "nip04"])
def test_reply_in_the_scheme_asked_for(scheme: Scheme | str) -> None:
    reply = encrypt_dm(GATEWAY, WALLET_PUB, "ok ✓", scheme)
    assert detect_scheme(reply) is Scheme(scheme)
    assert decrypt_dm(WALLET, GATEWAY_PUB, reply) == ("ok ✓", Scheme(scheme))


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="nip17"):
        encrypt_dm(GATEWAY, WALLET_PUB, "x", "nip17")


def test_message_for_someone_else_fails_with_a_decrypt_error() -> None:
    other = xonly_public_key(generate_secret_key()).hex()
    payload = encrypt_dm(WALLET, other, "not for the gateway", Scheme.NIP44)
    with pytest.raises(InvalidMacError):
        decrypt_dm(GATEWAY, WALLET_PUB, payload)


@pytest.mark.parametrize("content", ["garbage", "AAAA?iv=BBBB", "#" + "A" * 200])
def test_garbage_fails_with_a_decrypt_error(content: str) -> None:
    with pytest.raises(DecryptError) as info:
        decrypt_dm(GATEWAY, WALLET_PUB, content)
    assert info.value.code == 1007


def test_non_text_content_fails_with_a_decrypt_error() -> None:
    with pytest.raises(InvalidPayloadError):
        decrypt_dm(GATEWAY, WALLET_PUB, b"AAAA?iv=BBBB")  # type: ignore[arg-type]


def test_invalid_keys_fail_with_invalid_key_error() -> None:
    with pytest.raises(InvalidKeyError):
        decrypt_dm(GATEWAY, "ff" * 32, "x")
    with pytest.raises(InvalidKeyError):
        encrypt_dm(GATEWAY.hex(), WALLET_PUB, "x", Scheme.NIP44)  # type: ignore[arg-type]


def test_cache_hits_for_a_returning_peer_in_any_spelling() -> None:
    clear_key_cache()
    encrypt_dm(GATEWAY, WALLET_PUB, "one", Scheme.NIP44)
    encrypt_dm(GATEWAY, WALLET_PUB.upper(), "two", Scheme.NIP04)
    encrypt_dm(GATEWAY, bytes.fromhex(WALLET_PUB), "three", Scheme.NIP44)
    stats = key_cache_statistics()
    assert (stats.misses, stats.hits, stats.size) == (1, 2, 1)
    clear_key_cache()
    assert key_cache_statistics().size == 0


def test_invalid_keys_are_not_cached() -> None:
    clear_key_cache()
    with pytest.raises(InvalidKeyError):
        encrypt_dm(GATEWAY, "ff" * 32, "x", Scheme.NIP44)
    assert key_cache_statistics().size == 0


def test_cache_is_bounded() -> None:
    clear_key_cache()
    peers = [xonly_public_key(os.urandom(31) + b"\x01") for _ in range(KEY_CACHE_SIZE + 10)]
    for peer in peers:
        encrypt_dm(GATEWAY, peer, "x", Scheme.NIP44)
    stats = key_cache_statistics()
    assert stats.max_size == KEY_CACHE_SIZE
    assert stats.size == KEY_CACHE_SIZE
    # The oldest peers were evicted: talking to the first again costs a new ECDH.
    encrypt_dm(GATEWAY, peers[0], "x", Scheme.NIP44)
    assert key_cache_statistics().misses == stats.misses + 1
    clear_key_cache()
