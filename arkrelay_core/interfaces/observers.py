"""What observer hooks are handed: read-only views, never the gateway's own records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["GatewayView", "SessionView"]


@runtime_checkable
class SessionView(Protocol):
    """A signing session as ``arkrelay_session_transition`` sees it: a copy, taken when the
    transition committed, so holding it or reading it later changes nothing."""

    @property
    def id(self) -> str: ...

    @property
    def author(self) -> str:
        """The wallet's pubkey (hex) that sent the intent."""
        ...

    @property
    def type(self) -> str:
        """The intent's action type (``ark:transfer``...)."""
        ...

    @property
    def step_index(self) -> int: ...

    @property
    def step_total(self) -> int: ...

    @property
    def error_code(self) -> int | None:
        """The PROTOCOL.md code it failed with, if it failed."""
        ...

    @property
    def error_message(self) -> str | None: ...

    @property
    def entered_at(self) -> int:
        """When the session entered the state it is leaving (unix seconds; 0 if unknown)."""
        ...


@runtime_checkable
class GatewayView(Protocol):
    """The running gateway as ``arkrelay_startup``/``arkrelay_shutdown`` see it. Declared
    here rather than naming the ``Gateway`` class, so the hook specifications depend on
    what a plugin may use, not on the module that runs everything."""

    @property
    def config(self) -> Config: ...

    def statistics(self) -> Mapping[str, Any]:
        """Counters of the gateway and its parts, as ``/metrics`` reads them."""
        ...
