"""Publishing on one relay connection: send the EVENT, wait for its OK, retry after AUTH."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from trio_websocket import ConnectionClosed

from .acks import Ack, AckWaiters
from .auth import RelayAuth
from .stats import RelayStats

__all__ = ["Publisher"]

log = logging.getLogger(__name__)


class Publisher:
    """The publishing half of a relay connection; the connection feeds it the OKs."""

    def __init__(
        self,
        url: str,
        stats: RelayStats,
        auth: RelayAuth,
        *,
        send: Callable[[str], Awaitable[None]],
        authenticate: Callable[[bool], Awaitable[bool]],
    ) -> None:
        self._url = url
        self._stats = stats
        self._auth = auth
        self._send = send
        self._authenticate = authenticate
        self.acks = AckWaiters()

    async def publish(self, event_id: str, frame: str) -> Ack | None:
        """Send an EVENT frame and wait for its OK; the caller sets the deadline.

        Retries once after authenticating when the refusal may be for want of NIP-42 auth.
        None means no answer will come (not connected, or the connection went away).
        """
        answered_before = self._auth.answered
        try:
            ack = await self._send_and_wait(event_id, frame)
            if (
                ack is not None
                and self._auth.may_help(ack, answered_before=answered_before)
                and await self._authenticate(ack.message.startswith("auth-required:"))
            ):
                ack = await self._send_and_wait(event_id, frame)
        except (ConnectionClosed, trio.TooSlowError) as exc:
            log.info("relay %s: publish of %s got no answer: %r", self._url, event_id, exc)
            return None
        return ack

    async def _send_and_wait(self, event_id: str, frame: str) -> Ack | None:
        # Registered before sending: the OK may come back before send() returns.
        waiter = self.acks.expect(event_id)
        started = trio.current_time()
        try:
            await self._send(frame)
            self._stats.events_out += 1
            await waiter.done.wait()
        finally:
            self.acks.discard(waiter)
        if waiter.ack is not None:
            self._stats.record_latency(trio.current_time() - started)
        return waiter.ack
