"""NIP-11 over plain HTTP on the endpoint's URL (a raw HTTP/1.1 client, no library)."""

from __future__ import annotations

import json
from pathlib import Path

import trio
from arkrelay_nostr import __version__

from arkrelay_core.nostr import generate_secret_key

from .endpoint_harness import endpoint_running, pubkey_of

NOSTR_JSON = "application/nostr+json"


async def http(url: str, method: str = "GET", path: str = "/", accept: str | None = None):
    """One request with ``Connection: close``; returns (status, headers, body)."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    if accept is not None:
        lines.append(f"Accept: {accept}")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
        chunks = []
        while chunk := await stream.receive_some(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def test_the_relay_information_document(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, max_filters=4, max_limit=50) as (_, endpoint):
        status, headers, body = await http(endpoint.url, accept=NOSTR_JSON)
        assert status == 200
        assert headers["content-type"] == NOSTR_JSON
        assert headers["access-control-allow-origin"] == "*"
        document = json.loads(body)
        assert document["name"] == "ArkRelay gateway"
        assert document["pubkey"] == endpoint.gateway_pubkey
        assert document["supported_nips"] == [1, 11, 40]
        assert document["software"] == "arkrelay-nostr"
        assert document["version"] == __version__
        limitation = document["limitation"]
        assert limitation["max_message_length"] == 131_072
        assert limitation["max_subscriptions"] == 32
        assert limitation["max_filters"] == 4
        assert limitation["max_limit"] == 50
        assert limitation["max_subid_length"] == 64
        assert limitation["auth_required"] is False


async def test_the_document_shows_auth_and_a_rotated_key(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path, require_auth=True, name="mine") as (_, endpoint):
        new_key = pubkey_of(generate_secret_key())
        endpoint.listening.insert(0, new_key)
        _, _, body = await http(endpoint.url, accept=f"text/html, {NOSTR_JSON};q=0.9")
        document = json.loads(body)
        assert document["name"] == "mine"
        assert document["pubkey"] == new_key
        assert 42 in document["supported_nips"]
        assert document["limitation"]["auth_required"] is True


async def test_other_http_requests_get_short_answers(tmp_path: Path) -> None:
    async with endpoint_running(tmp_path) as (_, endpoint):
        status, headers, body = await http(endpoint.url)
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert b"Nostr relay" in body
        status, headers, _ = await http(endpoint.url, path="/favicon.ico")
        assert status == 404 and headers["content-type"].startswith("text/plain")
        status, headers, body = await http(endpoint.url, method="OPTIONS")
        assert status == 204 and body == b""
        assert headers["access-control-allow-origin"] == "*"
        status, headers, _ = await http(endpoint.url, method="POST")
        assert status == 405
        status, headers, body = await http(endpoint.url, method="HEAD", accept=NOSTR_JSON)
        assert status == 200 and body == b"" and int(headers["content-length"]) > 0
