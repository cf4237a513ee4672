"""NIP-42 on one relay connection: the challenge, our answer, and when a retry may help."""

from __future__ import annotations

from arkrelay_core.interfaces import SignEvent
from arkrelay_core.nostr import Event

from .acks import Ack
from .frames import auth_frame

__all__ = ["AUTH_KIND", "RelayAuth"]

#: NIP-42 client authentication event.
AUTH_KIND = 22242


class RelayAuth:
    """What the relay asked and what we answered; the connection does the sending.

    The answer is signed through the gateway's ``sign_event``: this code never holds a key.
    """

    def __init__(self, relay_url: str, sign_event: SignEvent, *, enabled: bool) -> None:
        self._url = relay_url
        self._sign_event = sign_event
        self.enabled = enabled
        self.challenge: str | None = None
        self._answered: str | None = None
        self._event_id: str | None = None

    @property
    def answered(self) -> bool:
        """Our answer to the current challenge has gone out."""
        return self.challenge is not None and self._answered == self.challenge

    def reset(self) -> None:
        """A new connection: challenges belong to the connection they came on."""
        self.challenge = self._answered = self._event_id = None

    def answer(self, *, again: bool = False) -> str | None:
        """The AUTH frame to send now, or None (no challenge, disabled, already answered)."""
        challenge = self.challenge
        if challenge is None or not self.enabled or (self.answered and not again):
            return None
        tags = [["relay", self._url], ["challenge", challenge]]
        event: Event = self._sign_event(AUTH_KIND, "", tags)
        self._event_id = event.id
        self._answered = challenge
        return auth_frame(event)

    def is_answer(self, event_id: str) -> bool:
        """The OK is for our AUTH event, not for a publish."""
        return bool(event_id) and event_id == self._event_id

    def may_help(self, ack: Ack, *, answered_before: bool) -> bool:
        """Whether authenticating and sending again may turn this refusal into acceptance."""
        if ack.accepted or not self.enabled or self.challenge is None:
            return False
        if ack.message.startswith("auth-required:"):
            return True
        # nostr-relay 1.14 says "restricted:" to an EVENT that came before our AUTH answer.
        return ack.message.startswith("restricted:") and not answered_before
