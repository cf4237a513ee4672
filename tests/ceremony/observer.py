"""A third party at a ceremony: it reads the public tags of a 31511 (its `d` names the
session and step) and publishes 31512s of its own, with any key it likes.

To make the attack as strong as it can be, the tests hand the observer the challenge's
plaintext (as if it had colluded with someone who could read it): its responses then name
the right session, step, type and ``payload_ref``, and the "valid" one carries a correct
BIP340 signature of the real ``payload_to_sign``, by the observer's own key.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import sqlalchemy as sa
import trio

from arkrelay_core.gateway import Gateway
from arkrelay_core.nostr import Event, bip340, encrypt_dm, first_tag_value, sign_event
from arkrelay_core.protocol import Kind
from arkrelay_core.store.models import EventIn, OutboxEvent

from .wallet import Received

__all__ = ["Observer", "addressed_to", "response_event", "wait_handled"]


def response_event(
    secret: bytes,
    gateway: str,
    content: dict[str, Any] | str,
    d: str,
    *,
    created_at: int | None = None,
) -> Event:
    """A 31512 signed by ``secret``, ``content`` NIP-44 encrypted to ``gateway`` (a str is
    sent as it is: junk that decrypts to nothing)."""
    if isinstance(content, str):
        text = content
    else:
        text = encrypt_dm(secret, gateway, json.dumps(content), "nip44")
    return sign_event(
        secret,
        kind=int(Kind.SIGNING_RESPONSE),
        content=text,
        tags=[["p", gateway], ["d", d]],
        created_at=created_at,
    )


class Observer:
    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.secret = bip340.generate_secret_key()
        self.pubkey = bip340.xonly_public_key(self.secret).hex()

    def _content(self, challenge: Received, signature: str, pubkey: str) -> dict[str, Any]:
        c = challenge.content
        return {
            "session_id": c["session_id"],
            "type": c["type"],
            "signature": signature,
            "payload_ref": c["payload_ref"],
            "algo": "BIP340",
            "pubkey": pubkey,
        }

    # Relays keep one event per (pubkey, kind, d): each of the observer's events for one
    # step gets its own second, so that none replaces another before the gateway sees it.

    def forged(self, challenge: Received, author: str, at: int | None = None) -> Event:
        """Claims to be the author's answer; the signature is 64 random bytes."""
        content = self._content(challenge, os.urandom(64).hex(), author)
        return response_event(self.secret, self.gateway, content, _d(challenge), created_at=at)

    def own_signature(self, challenge: Received, at: int | None = None) -> Event:
        """A correct BIP340 signature of the payload, by the observer's key."""
        digest = bytes.fromhex(challenge.content["payload_to_sign"])
        signature = bip340.schnorr_sign(self.secret, digest).hex()
        content = self._content(challenge, signature, self.pubkey)
        return response_event(self.secret, self.gateway, content, _d(challenge), created_at=at)

    def junk(self, challenge: Received, at: int | None = None) -> Event:
        """Content that looks like NIP-44 and decrypts to nothing."""
        noise = base64.b64encode(b"\x02" + os.urandom(120)).decode()
        return response_event(self.secret, self.gateway, noise, _d(challenge), created_at=at)

    def attacks(self, challenge: Received, author: str) -> list[Event]:
        """One of each: forged, signed by the observer's own key, undecryptable."""
        now = int(time.time())
        return [
            self.forged(challenge, author, now),
            self.own_signature(challenge, now + 1),
            self.junk(challenge, now + 2),
        ]


def _d(challenge: Received) -> str:
    d = first_tag_value(challenge.event, "d")
    assert d is not None
    return d


#: Seconds the gateway gets to handle an event the test sent.
PATIENCE = 30


async def wait_handled(gateway: Gateway, event_ids: list[str]) -> None:
    """Until the gateway has handled every one of ``event_ids`` (it marks them so)."""

    def handled(db: Any) -> int:
        return db.scalar(
            sa.select(sa.func.count())
            .select_from(EventIn)
            .where(EventIn.id.in_(event_ids), EventIn.handled_at.is_not(None))
        )

    with trio.fail_after(PATIENCE):
        while True:
            with gateway._sessions() as db:
                if handled(db) == len(event_ids):
                    return
            await trio.sleep(0.05)


def addressed_to(gateway: Gateway, pubkey: str) -> list[dict[str, Any]]:
    """Every event the gateway queued with ``pubkey`` in a `p` tag."""
    with gateway._sessions() as db:
        rows = db.scalars(sa.select(OutboxEvent)).all()
    return [row.event for row in rows if ["p", pubkey] in row.event["tags"]]


def later() -> int:
    """A created_at after anything sent so far this second (a resend must not be a
    byte-identical duplicate)."""
    return int(time.time()) + 1
