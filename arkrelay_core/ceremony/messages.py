"""The events the engine emits, signed by the service key with PROTOCOL.md §1's tags.

Encrypted kinds go to one peer in the scheme that peer last used; every addressable
event carries its unique `d`; messages that only matter for a while carry `expiration`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence

import msgspec

from ..codes import ErrorCode
from ..identity import ServiceIdentity
from ..nostr import Event
from ..protocol import Kind
from ..protocol.outcomes import Confirmation, Notification, PendingArkTx, failure_notice
from ..protocol.signing import Challenge
from ..protocol.tags import (
    challenge_d,
    expiration_tag,
    failure_d,
    notification_d,
    service_response_d,
)

__all__ = ["Messenger"]


class Messenger:
    def __init__(self, identity: ServiceIdentity) -> None:
        self.identity = identity

    def _dm(
        self,
        kind: int,
        peer: str,
        content: msgspec.Struct,
        scheme: str,
        tags: list,
        created_at: int | None = None,
    ) -> Event:
        text = msgspec.json.encode(content).decode()
        encrypted = self.identity.encrypt(peer, text, scheme)
        return self.identity.sign_event(kind, encrypted, tags, created_at=created_at)

    def challenge(
        self,
        challenge: Challenge,
        *,
        author: str,
        intent_id: str,
        scheme: str,
        created_at: int | None = None,
    ) -> Event:
        """``created_at``: a challenge sent again for its step must be newer than the one it
        replaces, or relays (which keep the newest per `d`) would keep the old one."""
        tags = [
            ["p", author],
            ["e", intent_id],
            ["d", challenge_d(challenge.session_id, challenge.step_index)],
            expiration_tag(challenge.expires_at),
        ]
        return self._dm(Kind.CHALLENGE, author, challenge, scheme, tags, created_at)

    def failure(
        self,
        code: ErrorCode,
        *,
        author: str,
        ref_id: str,
        answered: Sequence[str],
        scheme: str,
        message: str | None = None,
        expires_at: int | None = None,
        pending_tx: PendingArkTx | None = None,
    ) -> Event:
        tags = [["p", author], *(["e", e] for e in answered), ["d", failure_d(ref_id)]]
        tags.append(expiration_tag(expires_at if expires_at is not None else int(time.time())))
        notice = failure_notice(code, ref_id, message, pending_tx=pending_tx)
        return self._dm(Kind.FAILURE, author, notice, scheme, tags)

    def confirmation(
        self, content: Confirmation, *, d: str, answered: Iterable[str], parties: Iterable[str]
    ) -> Event:
        tags = [*(["e", e] for e in answered), *(["p", p] for p in dict.fromkeys(parties))]
        tags.append(["d", d])
        return self.identity.sign_event(
            Kind.CONFIRMATION, msgspec.json.encode(content).decode(), tags
        )

    def response(
        self,
        content: msgspec.Struct,
        *,
        author: str,
        request_id: str,
        scheme: str,
        expires_at: int | None = None,
    ) -> Event:
        tags = [
            ["p", author],
            ["e", request_id],
            ["d", service_response_d(request_id)],
            expiration_tag(expires_at if expires_at is not None else int(time.time())),
        ]
        return self._dm(Kind.SERVICE_RESPONSE, author, content, scheme, tags)

    def notification(
        self, note: Notification, *, author: str, scheme: str, expires_at: int | None = None
    ) -> Event:
        tags = [
            ["p", author],
            ["d", notification_d(uuid.uuid4().hex)],
            expiration_tag(expires_at if expires_at is not None else int(time.time())),
        ]
        return self._dm(Kind.NOTIFICATION, author, note, scheme, tags)
