"""The gateway's Nostr identity at run time: signs with the current service key, listens
on it and on rotated-out keys until their grace period ends."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .nostr import Event, bip340, sign_event
from .nostr.dm import Scheme, decrypt_dm, encrypt_dm
from .servicekey import (
    PASSPHRASE_ENV,
    ServiceKeys,
    create_key_file,
    passphrase_from_env,
    unlock,
)

__all__ = ["DEV_PASSPHRASE", "ServiceIdentity", "open_identity"]

log = logging.getLogger(__name__)

#: Protects the dev key that embedded defaults create off mainnet when no passphrase is
#: set. It guards nothing (it is printed here); it exists so a newcomer's first run works.
DEV_PASSPHRASE = "arkrelay-dev-key-not-secret"


class ServiceIdentity:
    def __init__(self, keys: ServiceKeys, *, dev: bool = False) -> None:
        self._keys = keys
        self.dev = dev
        # Prepared once: every event and sighash the process signs uses this one keypair.
        self._signer = bip340.SigningKey(keys.current.secret.reveal())

    @property
    def pubkey(self) -> str:
        return self._keys.current.pubkey

    def listening_pubkeys(self) -> Sequence[str]:
        now = time.time()
        return [k.pubkey for k in self._keys.listening if k.retire_at is None or k.retire_at > now]

    def sign_event(
        self,
        kind: int,
        content: str,
        tags: Sequence[Sequence[str]] = (),
        *,
        created_at: int | None = None,
    ) -> Event:
        return sign_event(
            self._signer,
            kind=kind,
            content=content,
            tags=tags,
            created_at=created_at,
        )

    def sign_hash(self, digest_hex: str) -> str:
        """BIP340-sign a 32-byte digest (a sighash of one of the gateway's own VTXOs)."""
        return self._signer.sign(bytes.fromhex(digest_hex)).hex()

    def decrypt(self, addressed_to: str, peer: str, content: str) -> tuple[str, Scheme]:
        """Decrypt a DM ``peer`` sent to ``addressed_to`` (one of the listening keys).

        Raises LookupError when that key is not ours (any more), and
        ``nostr.errors.DecryptError`` when the content does not decrypt.
        """
        now = time.time()
        for key in self._keys.listening:
            if key.pubkey == addressed_to and (key.retire_at is None or key.retire_at > now):
                return decrypt_dm(key.secret.reveal(), peer, content)
        raise LookupError(f"{addressed_to} is not a key this gateway listens on")

    def encrypt(self, peer: str, plaintext: str, scheme: Scheme | str) -> str:
        return encrypt_dm(self._keys.current.secret.reveal(), peer, plaintext, scheme)


def open_identity(
    key_file: Path, network: str, environ: Mapping[str, str] | None = None
) -> ServiceIdentity:
    """Unlock the service key; off mainnet, create a dev key on first run if none exists.

    On mainnet the operator must have created the key (``arkrelay keys new``) and must
    give its passphrase; nothing is ever generated or defaulted there.
    """
    env = os.environ if environ is None else environ
    if network == "mainnet" or env.get(PASSPHRASE_ENV):
        passphrase, dev = passphrase_from_env(env), False
    else:
        passphrase, dev = DEV_PASSPHRASE, True
        log.warning("%s is not set: using the dev passphrase (never on mainnet)", PASSPHRASE_ENV)
    if not key_file.exists() and network != "mainnet":
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = create_key_file(key_file, passphrase)
        log.warning("created a new service key %s at %s", info.pubkey, key_file)
    return ServiceIdentity(unlock(key_file, passphrase), dev=dev)
