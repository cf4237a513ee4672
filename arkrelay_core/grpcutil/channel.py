"""Opening a grpcio channel: plaintext, or TLS with a pinned (self-signed) certificate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

__all__ = ["CHANNEL_OPTIONS", "open_channel"]

#: Keep idle channels alive through NATs and notice dead peers on long streams.
CHANNEL_OPTIONS: Sequence[tuple[str, Any]] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    # grpcio's own reconnect backoff would otherwise outlast our retries after a restart.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)


def open_channel(
    target: str,
    *,
    tls: bool,
    root_certificate: bytes | None = None,
    server_name: str | None = None,
) -> grpc.Channel:
    """A channel to ``target``. With ``tls``, ``root_certificate`` (PEM) pins the daemon's
    certificate (lnd and tapd sign their own); ``server_name`` overrides the name checked
    against it. Macaroons travel as call metadata (see Caller), not as channel credentials,
    so they work the same over plaintext loopback."""
    if not tls:
        return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    credentials = grpc.ssl_channel_credentials(root_certificates=root_certificate)
    options = list(CHANNEL_OPTIONS)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(target, credentials, options=options)
