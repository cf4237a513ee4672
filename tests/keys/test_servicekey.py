"""The encrypted service key file: round trip, tamper detection, rotation with grace."""

from __future__ import annotations

import base64
import json
import logging
import stat
from pathlib import Path

import pytest

import arkrelay_core.servicekey as servicekey_module
from arkrelay_core.nostr.bip340 import xonly_public_key
from arkrelay_core.servicekey import (
    KeyFileError,
    KeyState,
    PassphraseError,
    ScryptCost,
    SecretBytes,
    WrongPassphraseError,
    create_key_file,
    passphrase_from_env,
    read_key_file,
    rotate,
    unlock,
)

PASSPHRASE = "correct horse battery staple"
# Low scrypt cost keeps the suite fast; the parameters are read back from the file.
FAST = ScryptCost(n=2**10, r=8, p=1)
T0 = 1_700_000_000
DAY = 86_400


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "gateway.key"


def new_file(path: Path, now: int = T0) -> str:
    return create_key_file(path, PASSPHRASE, now=now, cost=FAST).pubkey


def edit(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_create_then_unlock_round_trip(key_path: Path) -> None:
    info = create_key_file(key_path, PASSPHRASE, now=T0, cost=FAST)
    assert info.created_at == T0
    assert info.retire_at is None
    assert info.state(T0) is KeyState.CURRENT

    keys = unlock(key_path, PASSPHRASE, now=T0)
    assert keys.current.pubkey == info.pubkey
    assert xonly_public_key(keys.current.secret.reveal()).hex() == info.pubkey
    assert keys.listening == (keys.current,)
    assert keys.for_pubkey(info.pubkey) is keys.current


def test_default_scrypt_cost_is_stored_in_the_file(key_path: Path) -> None:
    info = create_key_file(key_path, PASSPHRASE)
    entry = read_key_file(key_path).current
    assert (entry.kdf.name, entry.kdf.n, entry.kdf.r, entry.kdf.p) == ("scrypt", 2**15, 8, 1)
    assert len(entry.kdf.salt) == 16
    assert unlock(key_path, PASSPHRASE).current.pubkey == info.pubkey


def test_file_format_and_mode(key_path: Path) -> None:
    pubkey = new_file(key_path)
    secret = unlock(key_path, PASSPHRASE).current.secret.reveal()

    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    text = key_path.read_text()
    document = json.loads(text)
    assert document["version"] == 1
    [entry] = document["keys"]
    assert set(entry) == {"pubkey", "created_at", "retire_at", "kdf", "nonce", "ciphertext"}
    assert entry["pubkey"] == pubkey
    assert entry["retire_at"] is None
    assert len(base64.b64decode(entry["nonce"])) == 12
    assert len(base64.b64decode(entry["ciphertext"])) == 32 + 16
    assert secret.hex() not in text
    assert base64.b64encode(secret).decode() not in text
    # No temp file is left beside it.
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["gateway.key"]


def test_read_needs_no_passphrase(key_path: Path) -> None:
    pubkey = new_file(key_path)
    key_file = read_key_file(key_path)
    assert [e.info.pubkey for e in key_file.keys] == [pubkey]
    assert key_file.current.info.state(T0) is KeyState.CURRENT


def test_create_refuses_to_overwrite(key_path: Path) -> None:
    new_file(key_path)
    before = key_path.read_bytes()
    with pytest.raises(KeyFileError) as info:
        create_key_file(key_path, PASSPHRASE, cost=FAST)
    assert str(info.value) == (
        f"{key_path} already exists; refusing to overwrite a key file "
        "(use 'arkrelay keys rotate' to replace the key)"
    )
    assert key_path.read_bytes() == before


def test_empty_passphrase_is_refused(key_path: Path) -> None:
    with pytest.raises(PassphraseError):
        create_key_file(key_path, "", cost=FAST)
    assert not key_path.exists()


def test_wrong_passphrase_message(key_path: Path) -> None:
    new_file(key_path)
    with pytest.raises(WrongPassphraseError) as info:
        unlock(key_path, "incorrect horse")
    assert str(info.value) == (
        f"cannot decrypt {key_path}: wrong passphrase (ARKRELAY_KEY_PASSPHRASE) or corrupted file"
    )


def test_passphrase_is_unicode_normalized(key_path: Path) -> None:
    create_key_file(key_path, "caf\u00e9-passphrase", cost=FAST)
    assert unlock(key_path, "cafe\u0301-passphrase").current.pubkey


def test_tampered_ciphertext_is_detected(key_path: Path) -> None:
    new_file(key_path)

    def flip_a_bit(document: dict) -> None:
        raw = bytearray(base64.b64decode(document["keys"][0]["ciphertext"]))
        raw[0] ^= 1
        document["keys"][0]["ciphertext"] = base64.b64encode(bytes(raw)).decode()

    edit(key_path, flip_a_bit)
    with pytest.raises(WrongPassphraseError):
        unlock(key_path, PASSPHRASE)


def test_replaced_pubkey_is_detected(key_path: Path, tmp_path: Path) -> None:
    new_file(key_path)
    other = tmp_path / "other.key"
    other_pubkey = new_file(other)
    edit(key_path, lambda document: document["keys"][0].update(pubkey=other_pubkey))
    with pytest.raises(WrongPassphraseError):
        unlock(key_path, PASSPHRASE)


def test_ciphertexts_swapped_between_entries_are_detected(key_path: Path) -> None:
    new_file(key_path)
    rotate(key_path, PASSPHRASE, 7 * DAY, now=T0 + DAY, cost=FAST)

    def swap_pubkeys(document: dict) -> None:
        first, second = document["keys"]
        first["pubkey"], second["pubkey"] = second["pubkey"], first["pubkey"]

    edit(key_path, swap_pubkeys)
    with pytest.raises(KeyFileError):
        unlock(key_path, PASSPHRASE, now=T0 + DAY)


def test_corrupted_retiring_entry_is_named(key_path: Path) -> None:
    old = new_file(key_path)
    rotate(key_path, PASSPHRASE, 7 * DAY, now=T0 + DAY, cost=FAST)

    def corrupt_old(document: dict) -> None:
        entry = document["keys"][1]
        raw = bytearray(base64.b64decode(entry["ciphertext"]))
        raw[-1] ^= 0x80
        entry["ciphertext"] = base64.b64encode(bytes(raw)).decode()

    edit(key_path, corrupt_old)
    with pytest.raises(KeyFileError) as info:
        unlock(key_path, PASSPHRASE, now=T0 + DAY)
    assert str(info.value) == f"cannot decrypt key {old} in {key_path}: the entry is corrupted"


def test_rotation_keeps_the_old_key_listening_for_the_grace_period(key_path: Path) -> None:
    old = new_file(key_path)
    rotated_at = T0 + 30 * DAY
    new = rotate(key_path, PASSPHRASE, 7 * DAY, now=rotated_at, cost=FAST)
    assert new.pubkey != old
    assert new.created_at == rotated_at

    [current, retiring] = read_key_file(key_path).keys
    assert current.pubkey == new.pubkey
    assert retiring.pubkey == old
    assert retiring.retire_at == rotated_at + 7 * DAY
    assert retiring.info.state(rotated_at) is KeyState.RETIRING

    during = unlock(key_path, PASSPHRASE, now=rotated_at + 7 * DAY - 1)
    assert during.current.pubkey == new.pubkey
    assert [k.pubkey for k in during.listening] == [new.pubkey, old]
    assert during.for_pubkey(old) is not None

    after = unlock(key_path, PASSPHRASE, now=rotated_at + 7 * DAY)
    assert [k.pubkey for k in after.listening] == [new.pubkey]
    assert retiring.info.state(rotated_at + 7 * DAY) is KeyState.RETIRED
    # Still in the file until the next rotation drops it.
    assert len(read_key_file(key_path).keys) == 2


def test_rotation_drops_keys_past_their_grace(key_path: Path) -> None:
    first = new_file(key_path)
    second = rotate(key_path, PASSPHRASE, DAY, now=T0 + 10, cost=FAST).pubkey
    third = rotate(key_path, PASSPHRASE, DAY, now=T0 + 2 * DAY, cost=FAST).pubkey
    pubkeys = [entry.pubkey for entry in read_key_file(key_path).keys]
    assert pubkeys == [third, second]
    assert first not in pubkeys
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_rotation_with_no_grace_forgets_the_old_key(key_path: Path) -> None:
    new_file(key_path)
    new = rotate(key_path, PASSPHRASE, 0, now=T0 + 10, cost=FAST)
    assert [entry.pubkey for entry in read_key_file(key_path).keys] == [new.pubkey]


def test_rotation_with_wrong_passphrase_changes_nothing(key_path: Path) -> None:
    new_file(key_path)
    before = key_path.read_bytes()
    with pytest.raises(WrongPassphraseError):
        rotate(key_path, "wrong", DAY, cost=FAST)
    assert key_path.read_bytes() == before


def test_negative_grace_is_refused(key_path: Path) -> None:
    new_file(key_path)
    with pytest.raises(ValueError, match="grace_seconds"):
        rotate(key_path, PASSPHRASE, -1, cost=FAST)


def test_missing_file(key_path: Path) -> None:
    with pytest.raises(KeyFileError) as info:
        read_key_file(key_path)
    assert str(info.value) == (
        f"{key_path}: no such key file (create one with 'arkrelay keys new')"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "not a valid service key file"),
        ('{"version": 1}', "not a valid service key file"),
        ('{"version": 1, "keys": [], "extra": 1}', "not a valid service key file"),
        ('{"version": 2, "keys": []}', "unsupported key file version 2"),
        ('{"version": 1, "keys": []}', "expected exactly one current key, found 0"),
    ],
)
def test_malformed_file_names_the_file(key_path: Path, content: str, problem: str) -> None:
    key_path.parent.mkdir(parents=True)
    key_path.write_text(content)
    with pytest.raises(KeyFileError) as info:
        read_key_file(key_path)
    message = str(info.value)
    assert message.startswith(f"{key_path}: {problem}")
    assert "\n" not in message


def test_two_current_keys_are_malformed(key_path: Path) -> None:
    new_file(key_path)
    rotate(key_path, PASSPHRASE, DAY, now=T0 + 10, cost=FAST)
    edit(key_path, lambda document: document["keys"][1].update(retire_at=None))
    with pytest.raises(KeyFileError, match="expected exactly one current key, found 2"):
        read_key_file(key_path)


def test_excessive_scrypt_parameters_are_refused(key_path: Path) -> None:
    new_file(key_path)
    edit(key_path, lambda document: document["keys"][0]["kdf"].update(n=2**24))
    with pytest.raises(KeyFileError, match="need more than 1024 MiB"):
        unlock(key_path, PASSPHRASE)


def test_group_readable_file_is_warned_about(
    key_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    new_file(key_path)
    key_path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="arkrelay_core.servicekey"):
        read_key_file(key_path)
    assert "accessible to other users" in caplog.text


def test_secrets_never_show(key_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        new_file(key_path)
        rotate(key_path, PASSPHRASE, DAY, now=T0 + 10, cost=FAST)
        keys = unlock(key_path, PASSPHRASE, now=T0 + 10)
    shown = repr(keys) + str(keys) + caplog.text
    for key in keys.listening:
        assert key.secret.reveal().hex() not in shown
    assert PASSPHRASE not in shown
    assert "SecretBytes(***)" in repr(keys)


def test_secret_bytes() -> None:
    secret = SecretBytes(b"\x01" * 32)
    assert repr(secret) == str(secret) == "SecretBytes(***)"
    assert secret == SecretBytes(b"\x01" * 32)
    assert secret != SecretBytes(b"\x02" * 32)
    assert len(secret) == 32


def test_passphrase_from_env() -> None:
    assert passphrase_from_env({"ARKRELAY_KEY_PASSPHRASE": "pw"}) == "pw"
    with pytest.raises(PassphraseError) as unset:
        passphrase_from_env({})
    assert str(unset.value) == (
        "ARKRELAY_KEY_PASSPHRASE is not set; export the passphrase that protects the service key"
    )
    with pytest.raises(PassphraseError) as empty:
        passphrase_from_env({"ARKRELAY_KEY_PASSPHRASE": ""})
    assert (
        str(empty.value) == "ARKRELAY_KEY_PASSPHRASE is empty; the service key needs a passphrase"
    )


def test_public_names() -> None:
    assert set(servicekey_module.__all__) == {
        "DEFAULT_SCRYPT_COST",
        "PASSPHRASE_ENV",
        "KdfParams",
        "KeyEntry",
        "KeyFile",
        "KeyFileError",
        "KeyInfo",
        "KeyState",
        "PassphraseError",
        "ScryptCost",
        "SecretBytes",
        "ServiceKey",
        "ServiceKeyError",
        "ServiceKeys",
        "WrongPassphraseError",
        "create_key_file",
        "passphrase_from_env",
        "read_key_file",
        "rotate",
        "unlock",
    }
    for name in servicekey_module.__all__:
        assert hasattr(servicekey_module, name)


def test_concurrent_rotations_both_survive(key_path: Path) -> None:
    # Two operators (or a script and an operator) rotating at once: neither rotation may
    # silently drop the key the other one created.
    import threading

    new_file(key_path)
    barrier = threading.Barrier(2)
    made: list[str] = []

    def rotate_once() -> None:
        barrier.wait()
        made.append(rotate(key_path, PASSPHRASE, 7 * DAY, now=T0 + DAY, cost=FAST).pubkey)

    threads = [threading.Thread(target=rotate_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    listening = {key.pubkey for key in unlock(key_path, PASSPHRASE, now=T0 + DAY).listening}
    assert set(made) <= listening
    assert len(listening) == 3
