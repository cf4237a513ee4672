"""`arkrelay keys ...` as an operator runs it: clean output, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from arkrelay_core.cli.keys import keys
from arkrelay_core.nostr import nip19
from arkrelay_core.servicekey import read_key_file, unlock

PASSPHRASE = "operator passphrase"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "gateway.key"


def run(*args: str, passphrase: str | None = PASSPHRASE) -> Result:
    env = {"ARKRELAY_KEY_PASSPHRASE": passphrase}
    return CliRunner(env=env).invoke(keys, list(args))


def assert_one_line_error(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)


def npub_of(pubkey: str) -> str:
    return nip19.encode_npub(pubkey)


def test_new_creates_the_key_file(key_file: Path) -> None:
    result = run("new", "--key-file", str(key_file))
    assert result.exit_code == 0, result.output
    pubkey = read_key_file(key_file).current.pubkey
    assert result.stdout.splitlines()[:3] == [
        f"created {key_file}",
        f"current   {npub_of(pubkey)}",
        f"  pubkey   {pubkey}",
    ]


def test_new_defaults_to_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("new")
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".arkrelay" / "gateway.key").is_file()
    assert result.stdout.startswith("created .arkrelay/gateway.key\n")


def test_new_refuses_an_existing_file(key_file: Path) -> None:
    assert run("new", "--key-file", str(key_file)).exit_code == 0
    before = key_file.read_bytes()
    result = run("new", "--key-file", str(key_file))
    assert_one_line_error(
        result,
        f"{key_file} already exists; refusing to overwrite a key file "
        "(use 'arkrelay keys rotate' to replace the key)",
    )
    assert key_file.read_bytes() == before


def test_show_hides_the_secret_unless_asked(key_file: Path) -> None:
    run("new", "--key-file", str(key_file))
    current = unlock(key_file, PASSPHRASE).current
    secret = current.secret.reveal()

    hidden = run("show", "--key-file", str(key_file), passphrase=None)
    assert hidden.exit_code == 0, hidden.output
    assert current.pubkey in hidden.stdout
    assert npub_of(current.pubkey) in hidden.stdout
    assert secret.hex() not in hidden.output
    assert "nsec1" not in hidden.output

    shown = run("show", "--key-file", str(key_file), "--reveal-secret")
    assert shown.exit_code == 0, shown.output
    assert f"  secret   {secret.hex()}" in shown.stdout.splitlines()
    assert f"  nsec     {nip19.encode_nsec(secret)}" in shown.stdout.splitlines()
    assert nip19.decode(nip19.encode_nsec(secret)).data == secret.hex()


def test_reveal_secret_needs_the_passphrase(key_file: Path) -> None:
    run("new", "--key-file", str(key_file))
    result = run("show", "--key-file", str(key_file), "--reveal-secret", passphrase=None)
    assert_one_line_error(
        result,
        "ARKRELAY_KEY_PASSPHRASE is not set; export the passphrase that protects the service key",
    )


def test_reveal_secret_with_wrong_passphrase(key_file: Path) -> None:
    run("new", "--key-file", str(key_file))
    result = run("show", "--key-file", str(key_file), "--reveal-secret", passphrase="nope")
    assert_one_line_error(
        result,
        f"cannot decrypt {key_file}: wrong passphrase (ARKRELAY_KEY_PASSPHRASE) or corrupted file",
    )


def test_export_npub_prints_only_the_current_npub(key_file: Path) -> None:
    run("new", "--key-file", str(key_file))
    result = run("export-npub", "--key-file", str(key_file), passphrase=None)
    assert result.exit_code == 0, result.output
    npub = result.stdout.strip()
    assert result.stdout == f"{npub}\n"
    decoded = nip19.decode(npub)
    assert decoded.prefix == "npub"
    assert decoded.data == read_key_file(key_file).current.pubkey


def test_rotate_then_show_lists_the_retiring_key(key_file: Path) -> None:
    run("new", "--key-file", str(key_file))
    old = read_key_file(key_file).current.pubkey

    result = run("rotate", "--key-file", str(key_file), "--grace", "1h")
    assert result.exit_code == 0, result.output
    entries = read_key_file(key_file).keys
    new = entries[0].pubkey
    assert new != old
    assert entries[1].pubkey == old
    assert entries[1].retire_at is not None
    assert entries[1].retire_at - entries[0].created_at == 3600

    shown = run("show", "--key-file", str(key_file)).stdout.splitlines()
    assert f"current   {npub_of(new)}" in shown
    assert f"retiring  {npub_of(old)}" in shown
    assert any(line.startswith("  retires  ") for line in shown)

    exported = run("export-npub", "--key-file", str(key_file)).stdout
    assert exported == f"{npub_of(new)}\n"


def test_rotate_default_grace_is_seven_days(key_file: Path) -> None:
    run("new", "--key-file", str(key_file))
    assert run("rotate", "--key-file", str(key_file)).exit_code == 0
    current, retiring = read_key_file(key_file).keys
    assert retiring.retire_at is not None
    assert retiring.retire_at - current.created_at == 7 * 86_400


def test_rotate_rejects_a_bad_grace(key_file: Path) -> None:
    run("new", "--key-file", str(key_file))
    result = run("rotate", "--key-file", str(key_file), "--grace", "a week")
    assert result.exit_code == 2
    assert "invalid duration 'a week'" in result.stderr
    assert len(read_key_file(key_file).keys) == 1


def test_missing_passphrase_is_one_line(key_file: Path) -> None:
    result = run("new", "--key-file", str(key_file), passphrase=None)
    assert_one_line_error(
        result,
        "ARKRELAY_KEY_PASSPHRASE is not set; export the passphrase that protects the service key",
    )
    assert not key_file.exists()


def test_missing_key_file_is_one_line(key_file: Path) -> None:
    for command in ("show", "export-npub"):
        result = run(command, "--key-file", str(key_file))
        assert_one_line_error(
            result, f"{key_file}: no such key file (create one with 'arkrelay keys new')"
        )


def test_malformed_key_file_is_one_line(key_file: Path) -> None:
    key_file.write_text("{}")
    result = run("export-npub", "--key-file", str(key_file))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {key_file}: not a valid service key file")
    assert result.stderr.count("\n") == 1
