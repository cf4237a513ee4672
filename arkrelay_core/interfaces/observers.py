"""What observer hooks are handed: read-only views, never the gateway's own records."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["SessionView"]


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
