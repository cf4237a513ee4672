"""The wallets the gateway talks to: decrypting their events, the DM scheme each one
uses, how often each may ask, and refusing an event with a 31341 (no session involved)."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable

from ..codes import ErrorCode
from ..errors import ProtocolViolation
from ..identity import ServiceIdentity
from ..nostr import Event, first_tag_value
from ..nostr.errors import DecryptError
from ..outbox import enqueue
from .db import Store
from .messages import Messenger

__all__ = ["Peers"]

log = logging.getLogger(__name__)

#: Peers remembered (schemes, rate windows): the oldest are forgotten past this.
PEERS_KEPT = 100_000


class Peers:
    def __init__(
        self,
        identity: ServiceIdentity,
        store: Store,
        messages: Messenger,
        stats: collections.Counter[str],
        notify_outbox: Callable[[], None],
        requests_per_minute: int,
    ) -> None:
        self.identity = identity
        self.store = store
        self.messages = messages
        self.stats = stats
        self.notify_outbox = notify_outbox
        self.requests_per_minute = requests_per_minute
        self._recent: dict[str, collections.deque[float]] = {}
        #: The DM scheme each peer last used: we answer in it (PROTOCOL.md §1).
        self._schemes: collections.OrderedDict[str, str] = collections.OrderedDict()

    def rate_limited(self, pubkey: str, now: float) -> bool:
        window = self._recent.setdefault(pubkey, collections.deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.requests_per_minute:
            return True
        window.append(now)
        if len(self._recent) > PEERS_KEPT:  # forget the quiet ones; keeps memory bounded
            for key in [k for k, v in self._recent.items() if not v][: PEERS_KEPT // 2]:
                del self._recent[key]
        return False

    def decrypt(self, event: Event) -> tuple[str, str]:
        """Plaintext and scheme of an encrypted inbound event; ProtocolViolation 1007."""
        addressed = first_tag_value(event, "p") or self.identity.pubkey
        try:
            text, scheme = self.identity.decrypt(addressed, event.pubkey, event.content)
        except (DecryptError, LookupError, ValueError) as exc:
            raise ProtocolViolation(
                f"cannot decrypt: {exc}", code=ErrorCode.CANNOT_DECRYPT
            ) from exc
        self._schemes[event.pubkey] = str(scheme)
        self._schemes.move_to_end(event.pubkey)
        if len(self._schemes) > PEERS_KEPT:
            self._schemes.popitem(last=False)
        return text, str(scheme)

    def scheme_of(self, pubkey: str) -> str:
        """The scheme to write to ``pubkey`` in: the one it last used, NIP-44 by default."""
        return self._schemes.get(pubkey, "nip44")

    async def refuse(
        self,
        event: Event,
        code: ErrorCode,
        message: str,
        *,
        ref_id: str | None = None,
        scheme: str | None = None,
    ) -> None:
        """Answer ``event`` with one 31341 (no session involved)."""
        scheme = scheme or self.scheme_of(event.pubkey)
        self.stats[f"refused_{int(code)}"] += 1
        ref = ref_id or first_tag_value(event, "d") or event.id
        notice = self.messages.failure(
            code,
            author=event.pubkey,
            ref_id=ref,
            answered=[event.id],
            scheme=scheme,
            message=message,
        )
        log.info("refused %s from %s: %d %s", event.id, event.pubkey, code, message)
        await self.store.run(enqueue, notice)
        self.notify_outbox()
