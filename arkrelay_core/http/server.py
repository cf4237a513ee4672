"""The HTTP server: hypercorn's trio worker inside the gateway's nursery."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import hypercorn.trio
import trio
from hypercorn.config import Config as HypercornConfig

from ..config import HttpSettings
from . import metrics
from .app import create_app
from .bodylimit import BodyLimit
from .context import ApiContext
from .routes import Route

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["HttpServer", "all_routes"]

log = logging.getLogger(__name__)


def all_routes() -> list[Route]:
    """The read-only API, /admin, /metrics and /openapi.json, each defined in its module."""
    from . import admin_views, metrics, openapi, views

    return [*views.api.routes, *admin_views.api.routes, *metrics.api.routes, *openapi.api.routes]


class HttpServer:
    def __init__(self, gateway: Gateway, settings: HttpSettings) -> None:
        self.settings = settings
        self.context = ApiContext(gateway, settings, all_routes())
        # Counting starts with the gateway, not with the first scrape.
        metrics.attach(gateway)
        self.app = create_app(self.context, self.context.routes)

    @property
    def url(self) -> str:
        return self.context.url or f"http://{self.settings.listen}"

    def _hypercorn_config(self) -> HypercornConfig:
        config = HypercornConfig()
        config.bind = [str(self.settings.listen)]
        config.accesslog = None
        config.errorlog = logging.getLogger("arkrelay_core.http.server")
        config.graceful_timeout = 2.0
        # Bounds a request's headers too; the body limit is BodyLimit's and the app's.
        config.h11_max_incomplete_size = 16 * 1024
        return config

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            app = BodyLimit(self.app, self.settings.max_body_bytes)
            serve = functools.partial(hypercorn.trio.serve, app, self._hypercorn_config())
            binds: list[str] = await nursery.start(serve)
            self.context.url = binds[0]
            log.info("HTTP API on %s", self.context.url)
            task_status.started()
