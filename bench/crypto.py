"""What each Nostr crypto operation costs, before and after issue #19's changes, in one run.

    uv run python bench/crypto.py [--count N] [--repeat R]

"before" is the earlier code path, rebuilt here from the same libraries: the public key
derived and a coincurve ``PrivateKey`` made for every signature (whose ``sign_schnorr``
builds a keypair and verifies its own signature), the x-only key parsed for every
verification, and ECDH through OpenSSL. "after" is ``arkrelay_core.nostr`` as it is now:
one :class:`~arkrelay_core.nostr.bip340.SigningKey` for a signer, parsed public keys
cached, ECDH in libsecp256k1. Both run interleaved in this process on the same inputs.

Each figure is the best of R rounds of N calls, in microseconds of this thread's CPU time
per call: CPU time leaves out the time other processes hold the cores, and of the
rounds the best is the one least disturbed by them (caches, frequency). "new peer" means
a peer whose conversation key is not cached (each call meets a different peer); "known
peer" means a cached one (the cache was there before too, so that path is unchanged).
Prints figures only: speed is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Sequence

import coincurve
from cryptography.hazmat.primitives.asymmetric import ec

from arkrelay_core.nostr import (
    Event,
    Scheme,
    clear_key_cache,
    compute_event_id,
    decrypt_dm,
    encrypt_dm,
    generate_secret_key,
    nip04,
    nip44,
    sign_event,
    verify_event,
)
from arkrelay_core.nostr.bip340 import SigningKey

#: A DM about the size of a signing challenge's JSON (session, payload ref, sighash, PSBT).
PLAINTEXT = '{"session_id":"' + "ab" * 32 + '","psbt":"' + "A" * 900 + '"}'
TAGS = [["p", "cd" * 32], ["d", "ef" * 32], ["e", "01" * 32]]


# ------------------------------------------------------------------ the earlier code paths


def old_sign_event(secret: bytes, kind: int, content: str, tags: Sequence[Sequence[str]]) -> Event:
    pubkey = coincurve.PublicKeyXOnly.from_secret(secret).format().hex()
    created_at = int(time.time())
    tag_list = [list(tag) for tag in tags]
    event_id = compute_event_id(pubkey, created_at, kind, tag_list, content)
    sig = coincurve.PrivateKey(secret).sign_schnorr(bytes.fromhex(event_id), os.urandom(32))
    return Event(event_id, pubkey, created_at, kind, tag_list, content, sig.hex())


def old_verify_event(event: Event) -> bool:
    expected = compute_event_id(
        event.pubkey, event.created_at, event.kind, event.tags, event.content
    )
    if expected != event.id:
        return False
    key = coincurve.PublicKeyXOnly(bytes.fromhex(event.pubkey))
    return key.verify(bytes.fromhex(event.sig), bytes.fromhex(event.id))


def old_shared_x(secret: bytes, peer: bytes) -> bytes:
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), b"\x02" + peer)
    private = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256K1())
    return private.exchange(ec.ECDH(), point)


# ------------------------------------------------------------------------------- timing


def one_round(call: Callable[[int], object], count: int, before: Callable[[], None]) -> float:
    """CPU seconds of this thread for ``call(0..count-1)``."""
    before()
    start = time.thread_time()
    for i in range(count):
        call(i)
    return time.thread_time() - start


def best_us(
    old: Callable[[int], object] | None,
    new: Callable[[int], object],
    count: int,
    repeat: int,
    before: Callable[[], None],
) -> tuple[float | None, float]:
    """Best of ``repeat`` rounds of each path, in CPU microseconds per call. The rounds of
    the two paths alternate, so a stretch of heavy load elsewhere hits both alike."""
    best_old = best_new = float("inf")
    for _ in range(repeat):
        if old is not None:
            best_old = min(best_old, one_round(old, count, before))
        best_new = min(best_new, one_round(new, count, before))
    scale = 1e6 / count
    return (None if old is None else best_old * scale), best_new * scale


def nothing() -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="calls per round")
    parser.add_argument("--repeat", type=int, default=10, help="rounds; the best one counts")
    args = parser.parse_args()
    n, r = args.count, args.repeat

    service_secret = generate_secret_key()
    service = SigningKey(service_secret)
    peers = [SigningKey(generate_secret_key()) for _ in range(n)]
    peer_pubs = [p.public_key for p in peers]
    events = [sign_event(peers[0], kind=31512, content=PLAINTEXT, tags=TAGS) for _ in range(n)]
    # What each new peer sends the service, in both schemes, for the decrypt rows.
    nip44_in = [
        nip44.encrypt(PLAINTEXT, nip44.get_conversation_key(p.secret, service.public_key))
        for p in peers
    ]
    nip04_in = [nip04.encrypt(p.secret, service.public_key, PLAINTEXT) for p in peers]
    known = peer_pubs[0]

    def old_nip44_new_encrypt(i: int) -> str:
        key = nip44.conversation_key_from_shared_x(old_shared_x(service_secret, peer_pubs[i]))
        return nip44.encrypt(PLAINTEXT, key)

    def old_nip44_new_decrypt(i: int) -> str:
        key = nip44.conversation_key_from_shared_x(old_shared_x(service_secret, peer_pubs[i]))
        return nip44.decrypt(nip44_in[i], key)

    def old_nip04_new_decrypt(i: int) -> str:
        return nip04.decrypt_with_key(old_shared_x(service_secret, peer_pubs[i]), nip04_in[i])

    rows: list[
        tuple[str, Callable[[int], object] | None, Callable[[int], object], Callable[[], None]]
    ] = [
        (
            "sign_event (service key)",
            lambda i: old_sign_event(service_secret, 31511, PLAINTEXT, TAGS),
            lambda i: sign_event(service, kind=31511, content=PLAINTEXT, tags=TAGS),
            nothing,
        ),
        (
            "sign_event (secret bytes)",
            lambda i: old_sign_event(service_secret, 31511, PLAINTEXT, TAGS),
            lambda i: sign_event(service_secret, kind=31511, content=PLAINTEXT, tags=TAGS),
            nothing,
        ),
        (
            "verify_event",
            lambda i: old_verify_event(events[i]),
            lambda i: verify_event(events[i]),
            nothing,
        ),
        (
            "NIP-44 encrypt, known peer",
            None,
            lambda i: encrypt_dm(service_secret, known, PLAINTEXT, Scheme.NIP44),
            nothing,
        ),
        (
            "NIP-44 decrypt, known peer",
            None,
            lambda i: decrypt_dm(service_secret, known, nip44_in[0]),
            nothing,
        ),
        (
            "NIP-44 encrypt, new peer",
            old_nip44_new_encrypt,
            lambda i: encrypt_dm(service_secret, peer_pubs[i], PLAINTEXT, Scheme.NIP44),
            clear_key_cache,
        ),
        (
            "NIP-44 decrypt, new peer",
            old_nip44_new_decrypt,
            lambda i: decrypt_dm(service_secret, peer_pubs[i], nip44_in[i]),
            clear_key_cache,
        ),
        (
            "NIP-04 decrypt, new peer",
            old_nip04_new_decrypt,
            lambda i: decrypt_dm(service_secret, peer_pubs[i], nip04_in[i]),
            clear_key_cache,
        ),
    ]

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    print(f"best of {r} rounds of {n} calls; CPU us per call; plaintext {len(PLAINTEXT)} B")
    print(f"{'operation':30} {'before':>9} {'after':>9} {'speed-up':>9}")
    figures: dict[str, tuple[float | None, float]] = {}
    for name, old, new, setup in rows:
        # Warm the known-peer entry (and the prepared key) as a running gateway would have.
        encrypt_dm(service_secret, known, "warm", Scheme.NIP44)
        figures[name] = best_us(old, new, n, r, setup)
        report(name, *figures[name])

    sign, verify = figures["sign_event (service key)"], figures["verify_event"]
    ecdh = figures["NIP-44 decrypt, new peer"]
    old_floor = 3 * (sign[0] or 0) + 5 * (verify[0] or 0)
    new_floor = 3 * sign[1] + 5 * verify[1]
    report("3 signs + 5 verifies", old_floor, new_floor)
    report("  + one new peer", old_floor + (ecdh[0] or 0), new_floor + ecdh[1])


def report(name: str, before: float | None, after: float) -> None:
    if before is None:
        print(f"{name:30} {'(same)':>9} {after:9.1f}")
    else:
        print(f"{name:30} {before:9.1f} {after:9.1f} {before / after:8.1f}x")


if __name__ == "__main__":
    main()
