"""The quart-trio application: serves the routes of ``routes.Api`` and answers every error
with the JSON ``ErrorBody``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from . import admin
from .context import ApiContext
from .errors import ErrorBody, HttpError
from .routes import Route

__all__ = ["create_app", "json_response"]

log = logging.getLogger(__name__)

JSON = "application/json"


def json_response(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status=status, content_type=JSON)


def _error(status: int, body: ErrorBody) -> Response:
    return json_response(body, status)


def create_app(ctx: ApiContext, routes: Sequence[Route]) -> QuartTrio:
    app = QuartTrio("arkrelay")
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.max_body_bytes
    # Quart would otherwise redirect /x/ to /x with an HTML body.
    app.url_map.strict_slashes = False
    for route in routes:
        app.add_url_rule(
            route.quart_path,
            route.name,
            _view(ctx, route),
            methods=[route.method],
            # quart would answer OPTIONS itself, before the key check and the audit log.
            provide_automatic_options=False if route.admin else None,
        )

    @app.before_request
    async def bounded_body() -> None:
        # quart holds MAX_CONTENT_LENGTH only for a view that reads the body; reading it
        # here (into a buffer that stops at the limit) holds it for every route, so a
        # bodyless GET given 64 MB is refused with 413 rather than answered 200.
        await request.get_data(cache=True)

    @app.errorhandler(HttpError)
    async def api_error(exc: HttpError) -> Response:
        return _error(exc.status, exc.body)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if request.path == "/admin" or request.path.startswith("/admin/"):
            # No route matched (404) or not with this method (405): still an admin request.
            admin.audit(ctx, None, _admin_refusal(status, exc), status)
        response = _error(status, HttpError(status, exc.description or exc.name).body)
        # Keep the exception's headers but its HTML content type: a 405 must say Allow.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    async def crash(exc: Exception) -> Response:
        log.exception("HTTP %s %s failed", request.method, request.path)
        return _error(500, HttpError(500, "internal error; the gateway logged it").body)

    return app


def _admin_refusal(status: int, exc: HTTPException) -> str:
    if status in (404, 405):  # no rule, or not with this method (OPTIONS included)
        return "refused: no such admin route"
    if status == 413:
        return "refused: body over max_body_bytes"
    return f"refused: {exc.name.lower()}"


def _view(ctx: ApiContext, route: Route) -> Callable[..., Awaitable[Response]]:
    query_names = [p.name for p in route.params if p.where == "query"]

    async def view(**path: str) -> Response:
        if route.admin:
            await admin.authorize(ctx, route)
        query = {name: request.args.get(name) for name in query_names}
        body = None
        if route.body is not None:
            raw = await request.get_data()
            try:
                body = msgspec.json.decode(raw or b"{}", type=route.body)
            except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
                raise HttpError(400, f"request body: {exc}") from None
        kwargs: dict[str, Any] = {**path, **query}
        if body is not None:
            kwargs["body"] = body
        result = await route.handler(ctx, **kwargs)
        if isinstance(result, Response):
            return result
        response = json_response(result)
        if route.admin:
            admin.audit(ctx, route, "allowed", response.status_code)
        return response

    view.__name__ = route.name
    return view
