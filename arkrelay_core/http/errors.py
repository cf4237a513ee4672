"""Every HTTP error is one JSON body, ``{error, code, detail}``: never an HTML page and
never a traceback."""

from __future__ import annotations

import msgspec

__all__ = ["ErrorBody", "HttpError", "bad_request", "not_found"]

#: The ``error`` slug of each status the API answers with.
SLUGS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    500: "internal_error",
    503: "unavailable",
}


class ErrorBody(msgspec.Struct):
    """What went wrong: ``error`` is a stable slug, ``code`` the HTTP status (or, for a
    failure the protocol defines, its PROTOCOL.md code), ``detail`` a sentence."""

    error: str
    code: int
    detail: str


class HttpError(Exception):
    def __init__(self, status: int, detail: str, *, code: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.body = ErrorBody(SLUGS.get(status, "error"), code or status, detail)


def not_found(detail: str) -> HttpError:
    return HttpError(404, detail)


def bad_request(detail: str) -> HttpError:
    return HttpError(400, detail)
