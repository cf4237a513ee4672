"""``/openapi.json``: the OpenAPI 3.1 document, generated from the routes and their models.

Nothing here is written by hand per route: paths, parameters, statuses and schemas all come
from the ``Route`` list the app serves and the msgspec types its handlers return, so the
document cannot drift from what the app answers (``tests/http/test_openapi.py`` holds the
two against each other, and schemathesis fuzzes the app with it).
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import msgspec
from quart import Response, current_app

from .admin import HEADER
from .context import ApiContext
from .errors import SLUGS, ErrorBody
from .routes import Api, Param, Route

__all__ = ["OPENAPI_VERSION", "SECURITY_SCHEME", "api", "build_document", "other_statuses"]

api = Api()

OPENAPI_VERSION = "3.1.0"
#: The name of the ``X-Admin-Key`` scheme under ``components.securitySchemes``.
SECURITY_SCHEME = "adminKey"
JSON = "application/json"
_REF = "#/components/schemas/{name}"
#: Where the encoded document of an app is kept (``app.extensions``).
_CACHE_KEY = "arkrelay.openapi"


def other_statuses(route: Route) -> list[int]:
    """Every status besides 200 the app can answer ``route`` with.

    The route declares what its handler raises; the app adds the rest: the admin check
    (401), the body size limit (413, on every route: a GET sent a body is refused too),
    and for a request body its decoding (400).
    """
    statuses = {*route.errors, *route.model_statuses, 413}
    if route.admin:
        statuses.add(401)
    if route.body is not None:
        statuses.add(400)
    return sorted(statuses)


def build_document(routes: Sequence[Route], url: str = "") -> dict[str, Any]:
    """The OpenAPI document of ``routes``, served at ``url`` (no ``servers`` if empty)."""
    json_routes = [r for r in routes if r.media_type == JSON]
    types: list[Any] = [ErrorBody]
    types += [r.response for r in json_routes]
    types += [r.body for r in routes if r.body is not None]
    found, components = msgspec.json.schema_components(types, ref_template=_REF)
    schemas = dict(zip(map(id, types), found, strict=True))
    for component in components.values():
        # msgspec copies docstrings verbatim, continuation indentation included.
        if "description" in component:
            component["description"] = inspect.cleandoc(component["description"])

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)

    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "ArkRelay gateway",
            "version": importlib.metadata.version("arkrelay-core"),
            "summary": "Read the state of an ArkRelay gateway; administer it with a key.",
            "description": (
                "Nostr is the API for every change of state; HTTP reads what the gateway "
                "holds. Every error is a JSON `ErrorBody`. The `/admin` operations need the "
                f"`{HEADER}` header, which is never accepted in the query string."
            ),
        },
        "tags": [{"name": tag} for tag in dict.fromkeys(r.tag for r in routes)],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": HEADER,
                    "description": "The configured `gateway.admin_key`.",
                }
            },
        },
    }
    if url:
        document["servers"] = [{"url": url}]
    return document


def _operation(route: Route, schemas: dict[int, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
    }
    if route.handler.__doc__:
        operation["description"] = inspect.cleandoc(route.handler.__doc__)
    if route.params:
        operation["parameters"] = [_parameter(p) for p in route.params]
    if route.body is not None:
        operation["requestBody"] = {
            # The app reads an empty body as ``{}``, so a body that decodes from ``{}`` may
            # be left out.
            "required": not _decodes_empty(route.body),
            "content": {JSON: {"schema": schemas[id(route.body)]}},
        }
    operation["responses"] = _responses(route, schemas)
    if route.admin:
        operation["security"] = [{SECURITY_SCHEME: []}]
    return operation


def _parameter(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if param.pattern is not None:
        schema["pattern"] = param.pattern
    out: dict[str, Any] = {
        "name": param.name,
        "in": param.where,
        # OpenAPI requires every path parameter to be required.
        "required": param.where == "path" or param.required,
        "description": param.description,
        "schema": schema,
    }
    if param.example is not None:
        out["example"] = param.example
    return out


def _responses(route: Route, schemas: dict[int, Any]) -> dict[str, Any]:
    if route.media_type == JSON:
        content: dict[str, Any] = {"schema": schemas[id(route.response)]}
    else:
        content = {"schema": {"type": "string"}}
    if route.example is not None:
        content["example"] = msgspec.to_builtins(route.example)
    responses: dict[str, Any] = {
        "200": {"description": route.summary, "content": {route.media_type: content}}
    }
    model = {"schema": schemas[id(route.response)]} if route.media_type == JSON else content
    for status in other_statuses(route):
        if status in route.model_statuses:
            responses[str(status)] = {
                "description": HTTPStatus(status).phrase,
                "content": {route.media_type: model},
            }
            continue
        example = ErrorBody(SLUGS.get(status, "error"), status, HTTPStatus(status).description)
        responses[str(status)] = {
            "description": _error_description(status),
            "content": {
                JSON: {"schema": schemas[id(ErrorBody)], "example": msgspec.to_builtins(example)}
            },
        }
    return responses


def _error_description(status: int) -> str:
    if status == 401:
        return f"Missing or wrong `{HEADER}` header, or the admin API is off"
    return HTTPStatus(status).phrase


def _decodes_empty(body_type: Any) -> bool:
    try:
        msgspec.json.decode(b"{}", type=body_type)
    except msgspec.ValidationError:
        return False
    return True


@api.get(
    "/openapi.json",
    dict[str, Any],
    summary="This document: OpenAPI 3.1, generated from the routes the gateway serves",
    tag="meta",
)
async def openapi(ctx: ApiContext) -> Response:
    # The routes are fixed once the app exists, so the document is built once per app.
    encoded = current_app.extensions.get(_CACHE_KEY)
    if encoded is None:
        encoded = msgspec.json.encode(build_document(ctx.routes, ctx.url))
        current_app.extensions[_CACHE_KEY] = encoded
    return Response(encoded, content_type=JSON)
