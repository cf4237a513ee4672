"""Operator settings of the two transports (``[transport.relays]``, ``[transport.endpoint]``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from arkrelay_core.config import Duration, HostPort
from arkrelay_core.protocol import Kind

__all__ = ["EndpointSettings", "RelaysSettings"]

RelayUrl = Annotated[str, msgspec.Meta(pattern=r"^wss?://[^\s]+$(?!\n)")]

#: What wallets send the gateway (PROTOCOL.md §1): requests, intents, signing responses.
INBOUND_KINDS = (int(Kind.SERVICE_REQUEST), int(Kind.INTENT), int(Kind.SIGNING_RESPONSE))


class RelaysSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A pool of external relays the gateway subscribes to and publishes through."""

    relays: Annotated[list[RelayUrl], msgspec.Meta(min_length=1)]
    kinds: list[int] = msgspec.field(default_factory=lambda: list(INBOUND_KINDS))
    connect_timeout: Duration = Duration(10)
    publish_timeout: Duration = Duration(10)
    backoff_initial: Duration = Duration(1)
    backoff_max: Duration = Duration(60)
    #: On reconnect, ask for events this much older than the newest seen (back-dated or
    #: slow-to-propagate events); after a restart, older than the newest the core had
    #: recorded (kept in relays-resume.json in the data dir). The persisted event-id
    #: dedup drops what was seen.
    resubscribe_window: Duration = Duration(600)
    max_event_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 65_536
    #: Answer NIP-42 AUTH challenges with a kind 22242 event signed by the service key.
    auth: bool = True


class EndpointSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The gateway's own relay: a websocket server wallets point any Nostr library at."""

    listen: HostPort = HostPort("127.0.0.1", 7447)
    #: The URL wallets use, for NIP-42 `relay` tags and the NIP-11 document.
    public_url: str | None = None
    name: str = "ArkRelay gateway"
    description: str = "ArkRelay: Nostr wallets to Bitcoin L2 (Ark, Taproot Assets, Lightning)"
    max_message_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 131_072
    max_subscriptions: Annotated[int, msgspec.Meta(ge=1)] = 32
    max_filters: Annotated[int, msgspec.Meta(ge=1)] = 10
    max_limit: Annotated[int, msgspec.Meta(ge=1)] = 500
    events_per_second_per_connection: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    events_per_second_per_pubkey: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    #: Require NIP-42 AUTH before EVENT and REQ.
    require_auth: bool = False
    #: Events kept for REQ, in a SQLite file under the data dir. Past it, the events
    #: clients sent are dropped in the order they arrived; the gateway's own events stay
    #: until their NIP-40 expiration.
    max_stored_events: Annotated[int, msgspec.Meta(ge=100)] = 100_000
    #: An EVENT whose `created_at` is further ahead of the gateway's clock than this is
    #: refused with `invalid:` (NIP-22 style): a far-future date would otherwise sort first
    #: in every answer to REQ.
    max_created_at_ahead: Duration = Duration(900)
    #: Open websockets at most; past it a new one is answered with HTTP 503. Keep it well
    #: under the process's file descriptor limit (`ulimit -n`).
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 512
    #: Open websockets from one IP address at most (HTTP 503 past it). Behind a reverse
    #: proxy every client has the proxy's address: raise it, or cap per client there.
    max_connections_per_ip: Annotated[int, msgspec.Meta(ge=1)] = 32
    #: How long an event addressed to the gateway may wait for the core to record it
    #: durably; ``OK true`` only after that, ``OK false`` (``error:``) when it takes longer.
    record_timeout: Duration = Duration(10)
