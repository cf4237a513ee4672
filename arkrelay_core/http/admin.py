"""``/admin/*``: allowed only with the configured key in the ``X-Admin-Key`` header.

The key is compared in constant time, never read from the query string (a request that
puts it there is refused: URLs end up in logs), and no key configured means the admin API
is off. Every admin request, allowed or refused, is written to the audit log: a line on
the ``arkrelay.audit`` logger, and a JSON line appended to ``<data_dir>/audit.log``.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path

from quart import request

from .context import ApiContext
from .errors import HttpError
from .routes import Route

__all__ = ["AUDIT_FILE", "HEADER", "audit", "authorize"]

HEADER = "X-Admin-Key"
#: The durable audit trail, in the gateway's data directory.
AUDIT_FILE = "audit.log"
#: Query parameters that look like a key: their presence alone refuses the request.
_KEY_PARAMS = {"admin_key", "x-admin-key", "key", "api_key", "token"}

log = logging.getLogger(__name__)
audit_log = logging.getLogger("arkrelay.audit")


def audit(ctx: ApiContext, route: Route | None, outcome: str, status: int) -> None:
    """Record one admin request (never its key: only the path, without the query);
    ``route`` is None for a request under /admin that matched no route."""
    line = json.dumps(
        {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
            "method": request.method,
            "path": request.path,
            "route": route.name if route is not None else None,
            "outcome": outcome,
            "status": status,
            "remote": request.remote_addr,
        },
        sort_keys=True,
    )
    audit_log.info(line)
    path = Path(ctx.gateway.config.gateway.data_dir) / AUDIT_FILE
    try:
        _append(path, line)
    except OSError as exc:
        # The answer stands (the action may already have happened); the operator must
        # learn that the durable trail has a hole, and the logger line above still holds.
        log.error("cannot append to the audit log %s: %s; lost line: %s", path, exc, line)


def _append(path: Path, line: str) -> None:
    # One write of a whole line to an O_APPEND descriptor: concurrent writers never
    # interleave within a line. Opened per line so a log rotated away is simply recreated;
    # admin requests are rare, so the fsync that makes each line survive a crash is cheap.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _same(given: str, configured: str) -> bool:
    # Digests first: compare_digest is constant-time only for equal lengths, so comparing
    # the raw strings would tell a prober the key's length.
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(configured.encode()).digest()
    )


async def authorize(ctx: ApiContext, route: Route) -> None:
    """Raise 401 (and audit it) unless the request carries the admin key properly."""
    configured = ctx.gateway.config.gateway.admin_key
    if configured is None:
        reason = "the admin API is off: no gateway.admin_key is configured"
    elif any(name.lower() in _KEY_PARAMS for name in request.args):
        reason = "an admin key is never accepted in the query string"
    elif any(_same(value, configured.reveal()) for _, value in request.args.items(multi=True)):
        log.warning("the admin key was sent in a query string: rotate it (it may be logged)")
        reason = "an admin key is never accepted in the query string"
    else:
        if _same(request.headers.get(HEADER, ""), configured.reveal()):
            return
        reason = f"missing or wrong {HEADER} header"
    audit(ctx, route, f"refused: {reason}", 401)
    raise HttpError(401, reason)
