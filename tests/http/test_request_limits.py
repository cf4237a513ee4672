"""Limits that hold on every HTTP route (issue #17): the body size, whatever the route
reads, and OPTIONS on /admin, which is an admin request like any other."""

from __future__ import annotations

import contextlib
import json

import trio

from arkrelay_core.http.admin import AUDIT_FILE

from .conftest import Api

MB = 1024 * 1024


async def _answer_to_body(url: str, path: str, total: int, *, chunked: bool) -> bytes:
    """GET ``path`` with a ``total``-byte body on a raw socket, with a Content-Length or
    chunked, and return the status the server answered with, even if it stopped reading
    (and closed) before the body was all out, as it should."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{framing}\r\n\r\n"
    piece = b"x" * 0x10000
    chunk = b"10000\r\n" + piece + b"\r\n" if chunked else piece
    try:
        await stream.send_all(head.encode())
        for _ in range(total // 0x10000):
            await stream.send_all(chunk)
        if chunked:
            await stream.send_all(b"0\r\n\r\n")
    except trio.BrokenResourceError:
        pass
    answer = b""
    with contextlib.suppress(trio.BrokenResourceError):
        while data := await stream.receive_some(4096):
            answer += data
    await stream.aclose()
    return answer


async def test_a_body_over_max_body_bytes_is_refused_on_bodyless_routes(api: Api) -> None:
    limit = api.gateway.config.http.max_body_bytes
    with trio.fail_after(60):
        for path in ("/health", "/info", "/openapi.json", "/nothing-here"):
            for chunked in (False, True):
                answer = await _answer_to_body(api.url, path, 16 * MB, chunked=chunked)
                assert answer.startswith(b"HTTP/1.1 413 "), (path, chunked, answer[:80])
                assert b'"error":"payload_too_large"' in answer
        just_under = await api.client.request("GET", "/health", content=b"x" * (limit - 1))
        assert just_under.status_code == 200
        assert (await api.get("/health")).status_code == 200


async def test_options_on_admin_routes_is_refused_and_audited(api: Api) -> None:
    with trio.fail_after(60):
        answers = [
            await api.client.request("OPTIONS", path)
            for path in ("/admin/plugins", "/admin/sessions")
        ]
        public = await api.client.request("OPTIONS", "/health")
    assert [a.status_code for a in answers] == [405, 405]
    assert all(a.json()["error"] == "method_not_allowed" for a in answers)
    assert public.status_code == 200  # outside /admin, quart's automatic OPTIONS stays
    path = api.gateway.config.gateway.data_dir / AUDIT_FILE
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("OPTIONS", "/admin/plugins", 405),
        ("OPTIONS", "/admin/sessions", 405),
    ]
    assert all(x["outcome"].startswith("refused: ") for x in lines)


async def test_an_oversize_admin_request_is_audited(api: Api) -> None:
    with trio.fail_after(60):
        answer = await api.admin("GET", "/admin/plugins", content=b"x" * MB)
    assert answer.status_code == 413
    path = api.gateway.config.gateway.data_dir / AUDIT_FILE
    (line,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert (line["path"], line["status"]) == ("/admin/plugins", 413)
    assert line["outcome"] == "refused: body over max_body_bytes"
