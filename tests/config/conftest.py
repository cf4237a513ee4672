"""Small real plugin settings Structs and a resolver standing in for the plugin host."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from arkrelay_core.config import Config, UnknownPluginError, load_config_text
from arkrelay_core.config.values import Duration, HostPort, Secret


class RelaysSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    relays: list[str]
    reconnect: Duration = Duration(5)


class EndpointSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    listen: HostPort = HostPort("127.0.0.1", 7447)


class ArkdSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: str
    tls: bool = False


class LndSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: HostPort
    macaroon: Secret
    tls_cert: Path | None = None
    peers: dict[str, HostPort] = {}


class AnchorSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    every: Duration
    max_fee_rate: int = 10


class LaxSettings(msgspec.Struct, frozen=True):
    """A plugin whose author forgot forbid_unknown_fields."""

    note: str = ""


INSTALLED: dict[str, dict[str, type[msgspec.Struct]]] = {
    "transport": {"relays": RelaysSettings, "endpoint": EndpointSettings},
    "ark": {"arkd": ArkdSettings},
    "lightning": {"lnd": LndSettings},
    "assets": {},
    "settlement": {"anchor": AnchorSettings, "lax": LaxSettings},
}


def resolve(role: str, name: str) -> type[msgspec.Struct]:
    try:
        return INSTALLED[role][name]
    except KeyError:
        raise UnknownPluginError(role, name, INSTALLED[role]) from None


@pytest.fixture
def plugins() -> SimpleNamespace:
    return SimpleNamespace(
        relays=RelaysSettings,
        endpoint=EndpointSettings,
        arkd=ArkdSettings,
        lnd=LndSettings,
        anchor=AnchorSettings,
        lax=LaxSettings,
        resolve=resolve,
    )


@pytest.fixture
def load_text() -> Callable[..., Config]:
    """Load TOML text as if it came from a file named arkrelay.toml."""

    def load(text: str, **kwargs: object) -> Config:
        return load_config_text(text, source="arkrelay.toml", settings_resolver=resolve, **kwargs)

    return load
