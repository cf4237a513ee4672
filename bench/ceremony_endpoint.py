"""The relay endpoint alone, in its own process, for ``bench/ceremony.py --gateways N``.

    python bench/ceremony_endpoint.py DATA_DIR

The `endpoint` transport serving as a plain relay: it listens for no gateway key, so it
stores and fans out every event, and the gateway processes reach it as any external
relay (the `relays` transport). Its limits are lifted as the in-process endpoint's are.
Prints ``{"url": ...}`` once listening; stops when its stdin closes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import trio
from arkrelay_nostr.endpoint import EndpointTransport
from arkrelay_nostr.settings import EndpointSettings

from arkrelay_core.config import HostPort
from arkrelay_core.interfaces import InboundEvent, PluginContext
from arkrelay_core.nostr import generate_secret_key, sign_event


async def serve(data_dir: Path) -> None:
    # The key signs nothing a wallet sees (no AUTH is asked for); the context needs one.
    secret = generate_secret_key()
    context = PluginContext(
        network="regtest",
        data_dir=data_dir,
        listening_pubkeys=lambda: [],
        sign_event=lambda kind, content, tags: sign_event(
            secret, kind=kind, content=content, tags=tags
        ),
        instance_name="endpoint",
    )
    settings = EndpointSettings(
        listen=HostPort("127.0.0.1", 0),
        events_per_second_per_connection=1e9,
        events_per_second_per_pubkey=1e9,
        max_stored_events=10_000_000,
        max_connections=100_000,
        max_connections_per_ip=100_000,
    )
    transport = EndpointTransport(settings, context)
    # Nothing is addressed to this endpoint's (absent) gateway: the channel stays empty.
    send, _receive = trio.open_memory_channel[InboundEvent](1)
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.serve, send)
        print(json.dumps({"url": transport.url}), flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        while await stdin.receive_some(1024):
            pass
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(serve, Path(sys.argv[1]))
