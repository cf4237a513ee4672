"""A wallet written with nostr-tools (node) against the endpoint: the library most Nostr
wallets and web clients use must work with the gateway unchanged."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from arkrelay_core.nostr import generate_secret_key
from arkrelay_core.protocol import Kind
from tests.nostr.conftest import INTEROP_DIR
from tests.support import need_node

from .endpoint_harness import endpoint_running, pubkey_of

pytestmark = pytest.mark.node

SCRIPT = INTEROP_DIR / "endpoint_client.mjs"


@pytest.fixture
def node_ready() -> None:
    """Skip without node and the interop packages, unless ARKRELAY_REQUIRE_NODE=1."""
    need_node(INTEROP_DIR, ["nostr-tools", "ws"])


async def _lines(stream: trio.abc.ReceiveStream):
    buffer = b""
    while chunk := await stream.receive_some(65536):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)


async def test_a_nostr_tools_wallet_publishes_subscribes_and_closes(
    tmp_path: Path, node_ready: None
) -> None:
    async with endpoint_running(tmp_path) as (nursery, endpoint):
        wallet = generate_secret_key()
        command = ["node", str(SCRIPT), endpoint.url, wallet.hex(), endpoint.gateway_pubkey]
        process = await nursery.start(
            partial(
                trio.run_process,
                command,
                cwd=INTEROP_DIR,
                stdout=subprocess.PIPE,
                capture_stderr=True,
                check=True,
            )
        )
        answer = endpoint.sign_as_gateway(
            int(Kind.CONFIRMATION), '{"ok":true}', [["p", pubkey_of(wallet)], ["d", "x"]]
        )
        result: dict[str, Any] = {}
        async for message in _lines(process.stdout):
            if message.get("ready") == "gateway":
                assert (await endpoint.transport.publish(answer)).accepted
            if "done" in message:
                result = message["done"]
                break
        assert await process.wait() == 0

    assert result["published"]["reason"] == ""
    assert result["duplicate"].startswith("duplicate:")
    assert result["forged"].startswith("invalid:")
    assert result["stored"] == [result["published"]["id"]]
    assert isinstance(result["live"], str)
    assert result["gateway"] == {"id": answer.id, "kind": answer.kind, "content": answer.content}
    assert result["after_close"] == 0
