"""A gateway with a settlement strategy on a real relay and the simulators, and what the
tests read back: settlement rows, the 31342s on the relay, the gateway's L2 txids."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio
import trio_websocket

from arkrelay_core.config import load_config_text
from arkrelay_core.gateway import Gateway
from arkrelay_core.nostr import Event, decode_event
from arkrelay_core.plugins import load_plugins
from arkrelay_core.protocol import Kind
from arkrelay_core.serving import serving
from arkrelay_core.store.models import L2Transaction, Settlement, SettlementLeaf
from tests.ceremony.harness import gateway_config

__all__ = [
    "anchor_section",
    "fetch_commitments",
    "l2_txids",
    "leaves",
    "settlement_gateway",
    "settlements",
    "wait_for",
]

#: Fast enough for a test: no retries, a breaker that closes again within a second.
LIGHTNING = """
[backend.lightning]
plugin = "lnd"
retries = 0
breaker_reset = "1s"
call_timeout = "3s"
"""


def anchor_section(**overrides: Any) -> str:
    settings = {
        "every": '"2s"',
        "grace": '"0s"',
        "poll": '"0.2s"',
        "confirmations": "2",
        "sat_per_vbyte": "2",
        "bump_after": '"1s"',
    }
    settings.update({k: v for k, v in overrides.items()})
    lines = "\n".join(f"{k} = {v}" for k, v in settings.items())
    return f'\n[settlement]\nplugin = "anchor"\n{lines}\n'


@contextlib.asynccontextmanager
async def settlement_gateway(
    directory: Path, relay_url: str, settlement: str, *, database: str | None = None
) -> AsyncIterator[Gateway]:
    registry = load_plugins()
    text = gateway_config(
        directory,
        relay_url,
        database=database,
        lightning=False,
        extra=LIGHTNING + settlement,
    )
    config = load_config_text(
        text, source=str(directory / "gw.toml"), settings_resolver=registry.settings_type
    )
    async with serving(config, registry, environ={}) as gateway:
        yield gateway


async def _read(gateway: Gateway, fn: Callable[[Any], Any]) -> Any:
    return await gateway.engine.store.run(fn)


async def settlements(gateway: Gateway) -> list[Settlement]:
    def read(db: Any) -> list[Settlement]:
        rows = list(db.scalars(sa.select(Settlement).order_by(Settlement.period_end)))
        for row in rows:
            db.expunge(row)
        return rows

    return await _read(gateway, read)


async def leaves(gateway: Gateway, settlement_id: str) -> list[str]:
    return await _read(
        gateway,
        lambda db: list(
            db.scalars(
                sa.select(SettlementLeaf.ark_txid)
                .where(SettlementLeaf.settlement_id == settlement_id)
                .order_by(SettlementLeaf.position)
            )
        ),
    )


async def l2_txids(gateway: Gateway) -> set[str]:
    return set(await _read(gateway, lambda db: list(db.scalars(sa.select(L2Transaction.ark_txid)))))


async def wait_for(
    check: Callable[[], Any], *, within: float = 30, every: float = 0.1, what: str = "it"
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    with trio.move_on_after(within):
        while True:
            found = check()
            if hasattr(found, "__await__"):
                found = await found
            if found:
                return found
            await trio.sleep(every)
    raise AssertionError(f"waited {within}s for {what}")


async def fetch_commitments(relay_url: str, author: str) -> list[Event]:
    """Every 31342 by ``author`` the relay holds (REQ until EOSE)."""
    events: list[Event] = []
    with trio.fail_after(10):
        async with trio_websocket.open_websocket_url(relay_url) as ws:
            await ws.send_message(
                json.dumps(["REQ", "l1", {"kinds": [Kind.L1_COMMITMENT], "authors": [author]}])
            )
            while True:
                frame = json.loads(await ws.get_message())
                if frame[0] == "EOSE":
                    return events
                if frame[0] == "EVENT":
                    events.append(decode_event(json.dumps(frame[2])))
