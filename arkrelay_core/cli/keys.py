"""``arkrelay keys``: create, inspect and rotate the gateway's service key."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from ..config.values import Duration
from ..nostr.nip19 import encode_npub, encode_nsec
from ..servicekey import (
    PASSPHRASE_ENV,
    KeyInfo,
    KeyState,
    ServiceKey,
    ServiceKeyError,
    create_key_file,
    passphrase_from_env,
    read_key_file,
    rotate,
    unlock,
)

__all__ = ["DEFAULT_KEY_FILE", "keys"]

DEFAULT_KEY_FILE = Path(".arkrelay/gateway.key")


class _DurationType(click.ParamType):
    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Duration:
        if isinstance(value, Duration):
            return value
        try:
            return Duration.parse(str(value))
        except (TypeError, ValueError) as exc:
            self.fail(str(exc), param, ctx)


_key_file_option = click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_KEY_FILE,
    show_default=True,
    help="The service key file.",
)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except ServiceKeyError as exc:
        raise click.ClickException(str(exc)) from None


def _timestamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _echo_key(info: KeyInfo, now: float, secret: ServiceKey | None = None) -> None:
    state = info.state(now)
    click.echo(f"{state.value:<8}  {encode_npub(info.pubkey)}")
    click.echo(f"  pubkey   {info.pubkey}")
    click.echo(f"  created  {_timestamp(info.created_at)}")
    if info.retire_at is not None:
        label = "retires" if state is KeyState.RETIRING else "retired"
        click.echo(f"  {label:<7}  {_timestamp(info.retire_at)}")
    if secret is not None:
        raw = secret.secret.reveal()
        click.echo(f"  nsec     {encode_nsec(raw)}")
        click.echo(f"  secret   {raw.hex()}")


@click.group("keys")
def keys() -> None:
    """Manage the gateway's service key (its Nostr identity).

    The key file is encrypted with the passphrase in ARKRELAY_KEY_PASSPHRASE.
    """


@keys.command("new")
@_key_file_option
def new_key(key_file: Path) -> None:
    """Create a key file holding a fresh service key."""
    with _one_line_errors():
        info = create_key_file(key_file, passphrase_from_env())
    click.echo(f"created {key_file}")
    _echo_key(info, time.time())


@keys.command("show")
@_key_file_option
@click.option(
    "--reveal-secret",
    is_flag=True,
    help=f"Also print the secret keys (needs {PASSPHRASE_ENV}).",
)
def show_keys(key_file: Path, reveal_secret: bool) -> None:
    """List every key in the key file: current, retiring and retired."""
    now = time.time()
    with _one_line_errors():
        key_file_data = read_key_file(key_file)
        unlocked = unlock(key_file, passphrase_from_env(), now=now) if reveal_secret else None
    for entry in key_file_data.keys:
        secret = unlocked.for_pubkey(entry.pubkey) if unlocked is not None else None
        _echo_key(entry.info, now, secret)


@keys.command("rotate")
@_key_file_option
@click.option(
    "--grace",
    type=_DurationType(),
    default="7d",
    show_default=True,
    help="How long the old key keeps listening (e.g. 90s, 15m, 1h, 2d).",
)
def rotate_key(key_file: Path, grace: Duration) -> None:
    """Replace the current key; the old one keeps listening for the grace period."""
    now = time.time()
    with _one_line_errors():
        rotate(key_file, passphrase_from_env(), grace.seconds, now=now)
        entries = read_key_file(key_file).keys
    click.echo(f"rotated {key_file}")
    for entry in entries:
        _echo_key(entry.info, now)


@keys.command("export-npub")
@_key_file_option
def export_npub(key_file: Path) -> None:
    """Print the current key's npub and nothing else."""
    with _one_line_errors():
        pubkey = read_key_file(key_file).current.pubkey
    click.echo(encode_npub(pubkey))
