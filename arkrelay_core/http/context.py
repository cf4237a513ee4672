"""What every handler gets: the running gateway, and a way to read the database."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..config import HttpSettings
from .routes import Route

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["ApiContext"]

T = TypeVar("T")


@dataclasses.dataclass
class ApiContext:
    gateway: Gateway
    settings: HttpSettings
    #: Every route the app serves (the OpenAPI document is generated from them).
    routes: list[Route] = dataclasses.field(default_factory=list)
    #: Set by the server once it listens: ``http://host:port``.
    url: str = ""

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in one transaction in a worker thread."""
        return await self.gateway.engine.store.run(fn, *args)
