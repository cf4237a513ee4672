"""The NIP-11 relay information document, served over HTTP on the relay's own URL."""

from __future__ import annotations

import msgspec

from ..settings import EndpointSettings
from .frames import MAX_SUB_ID_CHARS

__all__ = ["Limitation", "RelayInformation", "relay_information", "supported_nips"]

SOFTWARE = "arkrelay-nostr"


class Limitation(msgspec.Struct, frozen=True):
    max_message_length: int
    max_subscriptions: int
    max_filters: int
    max_limit: int
    max_subid_length: int
    default_limit: int
    auth_required: bool
    #: NIP-11: seconds ahead of the relay's clock past which an event's created_at is refused.
    created_at_upper_limit: int
    payment_required: bool = False
    restricted_writes: bool = False


class RelayInformation(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    description: str
    supported_nips: list[int]
    software: str
    version: str
    limitation: Limitation
    #: The gateway's current service key: the key wallets address and read answers from.
    pubkey: str | None = None


def supported_nips(settings: EndpointSettings) -> list[int]:
    # 40: expired events are refused and never served.
    return [1, 11, 40, 42] if settings.require_auth else [1, 11, 40]


def relay_information(settings: EndpointSettings, *, pubkey: str | None, version: str) -> bytes:
    """The document as JSON, built afresh each time so a rotated service key shows at once."""
    document = RelayInformation(
        name=settings.name,
        description=settings.description,
        pubkey=pubkey,
        supported_nips=supported_nips(settings),
        software=SOFTWARE,
        version=version,
        limitation=Limitation(
            max_message_length=settings.max_message_bytes,
            max_subscriptions=settings.max_subscriptions,
            max_filters=settings.max_filters,
            max_limit=settings.max_limit,
            max_subid_length=MAX_SUB_ID_CHARS,
            default_limit=settings.max_limit,
            auth_required=settings.require_auth,
            created_at_upper_limit=int(settings.max_created_at_ahead.seconds),
        ),
    )
    return msgspec.json.encode(document)
