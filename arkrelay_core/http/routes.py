"""The API as data: each route names its handler, its response model and its parameters.

The app (``app.py``) serves these routes and the OpenAPI document (``openapi.py``) is
generated from the very same list and msgspec models, so the two cannot drift.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Api", "Param", "Route"]

Handler = Callable[..., Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class Param:
    """A path or query parameter (always a string on the wire)."""

    name: str
    description: str
    where: str = "path"  # "path" | "query"
    required: bool = True
    pattern: str | None = None
    example: str | None = None


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    #: OpenAPI form: ``/sessions/{session_id}``.
    path: str
    handler: Handler
    response: Any
    summary: str
    tag: str
    params: tuple[Param, ...] = ()
    #: Statuses other than 200 the route answers with (each with the ErrorBody).
    errors: tuple[int, ...] = ()
    #: Statuses other than 200 answered with the ``response`` model itself, not an
    #: ErrorBody (``/ready`` is 503 with its checks).
    model_statuses: tuple[int, ...] = ()
    admin: bool = False
    body: Any = None
    #: A media type other than JSON for the 200 response (``/metrics``).
    media_type: str = "application/json"
    example: Any = None

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def quart_path(self) -> str:
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)


class Api:
    """A collection of routes, filled by decorators in the modules that define them."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self, method: str, path: str, response: Any, **kw: Any
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, path, handler, response, **kw))
            return handler

        return register

    def get(self, path: str, response: Any, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, response, **kw)

    def post(self, path: str, response: Any, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, response, **kw)
