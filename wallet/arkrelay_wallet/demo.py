"""`arkrelay demo`: every flow of the product once, end to end, over Nostr.

The gateway runs in-process on the embedded defaults (its own relay endpoint, the arkd,
lnd and tapd simulators), in a fresh data directory. Three reference wallets talk to it
through the endpoint exactly as any Nostr client would: alice lifts gBTC over Lightning
(the simulated network's ``outside`` node pays), pays bob, bob splits a VTXO, alice swaps
gBTC for a second asset with a DEX bot in one batch, alice lands gBTC to an outside
invoice, and every wallet asks for its state. Each step prints the events as they pass;
the run succeeds only if every confirmation arrived and every balance is the expected one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import trio

from arkrelay_core.ceremony.ledger import issue_asset
from arkrelay_core.config import load_config_text
from arkrelay_core.config.embedded import embedded_config_text
from arkrelay_core.gateway import Gateway
from arkrelay_core.interfaces import InvoiceState, PaymentStatus
from arkrelay_core.plugins import PluginRegistry
from arkrelay_core.protocol import Kind
from arkrelay_core.serving import serving

from .client import Received, Wallet
from .lightning import node_client

__all__ = ["DEMO_DIR", "EXPECTED", "Demo", "DemoFailed", "Record", "quiet_gateway_logs"]

DEMO_DIR = Path(".arkrelay-demo")
#: The file that marks a directory as the demo's own (safe to empty).
MARKER = "DEMO"
USDX_ID = hashlib.sha256(b"arkrelay-demo:USDX").hexdigest()
GBTC = "gBTC"
USDX = "USDX"
STEP_TIMEOUT = 90.0
STEPS = 6

LIFT = 100_000
TRANSFER = 20_000
SPLIT = (5_000, 10_000)
SWAP_GBTC, SWAP_USDX = 10_000, 500
LAND = 30_000
FLAT_FEE = 10
LAND_FEE = -(-LAND // 1000)
DEX_FLOAT = 1_000  # gBTC the bot holds to pay its own leg's fee
DEX_USDX = 5_000
#: What the outside node may pay in routing fees for the lift (the simulated network
#: charges 1 sat + 0.1 %).
LIFT_ROUTING_FEE = 1_000

_EXTRA = f"""
[[ceremony.assets]]
ticker = "{USDX}"
asset_id = "{USDX_ID}"
name = "Demo dollar (issued by the demo, 1 unit = 1 sat)"
"""

_KIND_NAMES = {
    Kind.SERVICE_REQUEST: "request",
    Kind.SERVICE_RESPONSE: "response",
    Kind.NOTIFICATION: "notification",
    Kind.INTENT: "intent",
    Kind.CHALLENGE: "challenge",
    Kind.SIGNING_RESPONSE: "signature",
    Kind.CONFIRMATION: "confirmation",
    Kind.FAILURE: "failure",
}


class DemoFailed(Exception):
    """A step did not end the way the demo expects; the message says how."""


@dataclasses.dataclass
class Record:
    """One event of the run, for docs/flows.md."""

    step: str
    wallet: str
    direction: str  # "->" wallet to gateway, "<-" gateway to wallet
    kind: int
    tags: list[list[str]]
    content: dict[str, Any]


Out = Callable[[str], None]


class Demo:
    def __init__(
        self,
        registry: PluginRegistry,
        directory: Path = DEMO_DIR,
        *,
        out: Out = print,
        record: Callable[[Record], None] | None = None,
        relay: str | None = None,
    ) -> None:
        self.registry = registry
        #: An external relay to run the demo through instead of the gateway's endpoint.
        self.relay = relay
        self.directory = directory.absolute()
        self.out = out
        self.record = record
        self.step = ""
        #: Pubkey -> name of every party: the wallets and the gateway.
        self.names: dict[str, str] = {}
        self.confirmations = 0

    # -- the gateway --------------------------------------------------------------------

    def _config_text(self) -> str:
        def installed(role: str, name: str) -> bool:
            return name in self.registry.names(role)

        text, missing = embedded_config_text(
            installed,
            listen="127.0.0.1:0",
            data_dir=str(self.directory),
            relays=[self.relay] if self.relay else (),
        )
        if missing:
            raise DemoFailed(
                f"the demo needs every reference plugin; not installed: {', '.join(missing)} "
                "(run it with `uv run --all-packages arkrelay demo`)"
            )
        return text + _EXTRA

    @contextlib.asynccontextmanager
    async def _gateway(self) -> AsyncIterator[Gateway]:
        self._fresh_directory()
        config = load_config_text(
            self._config_text(),
            source="<demo>",
            settings_resolver=self.registry.settings_type,
            base_dir=self.directory,
        )
        async with serving(config, self.registry) as gateway:
            yield gateway

    def _fresh_directory(self) -> None:
        """Empty the demo's directory, but only one an earlier demo made: ``--dir`` must
        never wipe an operator's data."""
        marker = self.directory / MARKER
        if self.directory.exists() and any(self.directory.iterdir()):
            if not marker.exists():
                raise DemoFailed(
                    f"{self.directory} exists and is not a demo directory; "
                    "choose another --dir (the demo empties its directory at start)"
                )
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        marker.write_text("made by `arkrelay demo`; emptied at the start of every run\n")

    # -- output -------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        self.out(line)

    def _trace(self, wallet: Wallet, direction: str, received: Received) -> None:
        event = received.event
        if direction == "<-" and not wallet.concerns(event):
            return
        who = self.names.get(wallet.pubkey, wallet.pubkey[:8])
        name = _KIND_NAMES.get(event.kind, str(event.kind))
        self._say(
            f"    {who:<6}{direction} {event.kind} {name:<12} {event.id[:10]}  "
            f"{_summary(received.content)}"
        )
        if self.record is not None:
            self.record(Record(self.step, who, direction, event.kind, event.tags, received.content))

    def _begin(self, number: int, title: str) -> None:
        self.step = title
        self._say(f"\n[{number}/{STEPS}] {title}")

    # -- the run ------------------------------------------------------------------------

    async def run(self) -> dict[str, dict[str, int]]:
        """Run every step; return the balances (wallet -> ticker -> amount) if they are
        the expected ones, else raise DemoFailed."""
        async with self._gateway() as gateway:
            url = self.relay or gateway.components.transports["endpoint"].url
            gw = gateway.identity.pubkey
            self._say(f"gateway {gw} on {url} (simulated arkd, lnd, tapd; regtest)")
            self._say(f"state in {self.directory}")
            wallets = {
                name: Wallet(url, gw, trace=self._trace, reconnect=True)
                for name in ("alice", "bob", "dex")
            }
            self.names = {w.pubkey: name for name, w in wallets.items()}
            self.names[gw] = "gateway"
            async with (
                wallets["alice"] as alice,
                wallets["bob"] as bob,
                wallets["dex"] as dex,
                node_client(gateway.config.gateway.data_dir) as outside,
            ):
                self._begin(0, "the wallets connect and learn the gateway's terms (get_info)")
                for wallet in (alice, bob, dex):
                    await wallet.load_terms(timeout=STEP_TIMEOUT)
                await self._lift(alice, outside)
                await self._transfer(alice, bob)
                await self._split(bob)
                await self._swap(gateway, alice, dex)
                await self._land(alice, outside)
                balances = await self._balances(wallets)
        self._check(balances)
        return balances

    async def _lift(self, alice: Wallet, outside: Any) -> None:
        self._begin(1, f"lift {LIFT:,} sat of gBTC to alice over Lightning")
        reply = await alice.call("lift_lightning", asset_id=GBTC, amount=LIFT)
        if reply.get("status") != "pending":
            raise DemoFailed(f"lift_lightning was answered {reply}")
        payment_hash = reply["payment_hash"]
        self._say(f"    outside node pays {reply['invoice'][:40]}…")
        async with trio.open_nursery() as nursery:

            async def pay() -> None:
                result = await outside.pay_invoice(
                    reply["invoice"], fee_limit_sat=LIFT_ROUTING_FEE, timeout_seconds=60
                )
                # A failed payment never confirms: stop waiting for it at once.
                if result.status is not PaymentStatus.SUCCEEDED:
                    raise DemoFailed(f"the outside node could not pay the lift invoice: {result}")

            nursery.start_soon(pay)
            await alice.next(
                Kind.CONFIRMATION,
                match=lambda r: ["d", f"lift:{payment_hash}"] in r.event.tags,
                timeout=STEP_TIMEOUT,
            )
        self.confirmations += 1

    async def _ceremony(self, wallet: Wallet, intent: Any, *, publish: bool = True) -> Received:
        outcome = await wallet.run_ceremony(intent, timeout=STEP_TIMEOUT, publish=publish)
        if outcome.event.kind != Kind.CONFIRMATION:
            raise DemoFailed(
                f"{self.names[wallet.pubkey]}'s {self.step!r} failed: {outcome.content}"
            )
        self.confirmations += 1
        return outcome

    async def _transfer(self, alice: Wallet, bob: Wallet) -> None:
        self._begin(2, f"alice pays bob {TRANSFER:,} gBTC")
        intent = alice.intent("ark:transfer", _pay(GBTC, TRANSFER, bob.pubkey))
        await self._ceremony(alice, intent)

    async def _split(self, bob: Wallet) -> None:
        self._begin(3, f"bob splits his VTXO into {SPLIT[0]:,} + {SPLIT[1]:,} (+ change)")
        state = await bob.call("sync_state", asset_id=GBTC)
        [vtxo] = [v for v in state["vtxos"] if v["status"] == "spendable"]
        params = {
            "vtxo_id": vtxo["vtxo_id"],
            "asset_id": GBTC,
            "split_amounts": list(SPLIT),
            "fee": {"asset_id": GBTC, "amount": FLAT_FEE},
        }
        await self._ceremony(bob, bob.intent("vtxo:split", params))

    async def _swap(self, gateway: Gateway, alice: Wallet, dex: Wallet) -> None:
        self._begin(
            4, f"alice swaps {SWAP_GBTC:,} gBTC for {SWAP_USDX:,} USDX with the DEX bot (a batch)"
        )
        await issue_asset(gateway.engine, dex.pubkey, USDX, DEX_USDX)
        await issue_asset(gateway.engine, dex.pubkey, GBTC, DEX_FLOAT)
        self._say(f"    operator issues the bot {DEX_USDX:,} USDX and {DEX_FLOAT:,} gBTC")
        batch_id = "demo-swap"
        give = alice.intent("ark:swap_leg", _pay(GBTC, SWAP_GBTC, dex.pubkey, batch_id))
        take = dex.intent("ark:swap_leg", _pay(USDX, SWAP_USDX, alice.pubkey, batch_id))
        reply = await dex.call(
            "submit_batch",
            batch_id=batch_id,
            intents=[msgspec.to_builtins(give), msgspec.to_builtins(take)],
        )
        if reply.get("status") != "pending":
            raise DemoFailed(f"submit_batch was answered {reply}")
        outcomes: list[Received] = []
        async with trio.open_nursery() as nursery:

            async def leg(wallet: Wallet, intent: Any) -> None:
                outcomes.append(await self._ceremony(wallet, intent, publish=False))

            nursery.start_soon(leg, alice, give)
            nursery.start_soon(leg, dex, take)
        if outcomes[0].event.id != outcomes[1].event.id:
            raise DemoFailed("the two legs were confirmed by different events")
        self.confirmations -= 1  # one 31340 covers the batch

    async def _land(self, alice: Wallet, outside: Any) -> None:
        self._begin(5, f"alice lands {LAND:,} gBTC to an outside Lightning invoice")
        invoice = await outside.create_invoice(LAND * 1000, memo="demo land", expiry=3600)
        self._say(f"    outside node invoices {invoice.bolt11[:40]}…")
        params = {
            "asset_id": GBTC,
            "amount": LAND,
            "lightning_invoice": invoice.bolt11,
            "fee": {"asset_id": GBTC, "amount": LAND_FEE},
        }
        await self._ceremony(alice, alice.intent("lightning:land", params))
        state = (await outside.lookup_invoice(invoice.payment_hash)).state
        if state is not InvoiceState.SETTLED:
            raise DemoFailed(f"the outside invoice is {state}, not settled")

    async def _balances(self, wallets: dict[str, Wallet]) -> dict[str, dict[str, int]]:
        self._begin(
            6, "every wallet asks for its state (sync_state) and checks it with the Ark server"
        )
        tickers: dict[str, str] = {}
        found: dict[str, dict[str, int]] = {}
        for name, wallet in wallets.items():
            if not tickers:
                info = await wallet.call("get_info")
                tickers = {a["asset_id"]: a["ticker"] for a in info["assets"]}
            checked = await wallet.check_with_server(timeout=STEP_TIMEOUT)
            if checked.problems:
                raise DemoFailed(
                    f"{name}: the gateway and the Ark server disagree: {checked.problems}"
                )
            self._say(
                f"    {name}: the Ark server lists the same {len(checked.server)} VTXO(s), "
                f"{checked.server_balance:,} sat"
            )
            state = checked.state
            found[name] = {tickers.get(k, k[:8]): v for k, v in state["balances"].items() if v}
        return found

    def _check(self, balances: dict[str, dict[str, int]]) -> None:
        self._say("\n  wallet   gBTC      USDX      expected")
        wrong = []
        for name, want in EXPECTED.items():
            got = balances.get(name, {})
            ok = got == want
            self._say(
                f"  {name:<8} {got.get(GBTC, 0):>8,}  {got.get(USDX, 0):>8,}  "
                + ("ok" if ok else f"MISMATCH (expected {want})")
            )
            if not ok:
                wrong.append(name)
        if wrong:
            raise DemoFailed(f"balances differ from the expected ones for {', '.join(wrong)}")
        self._say(f"\n{self.confirmations} confirmations, every balance as expected")


EXPECTED: dict[str, dict[str, int]] = {
    "alice": {
        GBTC: LIFT - (TRANSFER + FLAT_FEE) - (SWAP_GBTC + FLAT_FEE) - (LAND + LAND_FEE),
        USDX: SWAP_USDX,
    },
    "bob": {GBTC: TRANSFER - FLAT_FEE},
    "dex": {GBTC: DEX_FLOAT + SWAP_GBTC - FLAT_FEE, USDX: DEX_USDX - SWAP_USDX},
}


def _pay(asset: str, amount: int, to: str, batch_id: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "asset_id": asset,
        "amount": amount,
        "recipient_pubkey": to,
        "fee": {"asset_id": GBTC, "amount": FLAT_FEE},
    }
    if batch_id is not None:
        params["batch_id"] = batch_id
    return params


def _summary(content: dict[str, Any], width: int = 150) -> str:
    """The content in one line: long values (PSBTs, invoices, signatures) shortened."""

    def short(value: Any) -> Any:
        if isinstance(value, str) and len(value) > 24:
            return value[:12] + "…"
        if isinstance(value, dict):
            return {k: short(v) for k, v in value.items()}
        if isinstance(value, list):
            return [short(v) for v in value[:4]] + (["…"] if len(value) > 4 else [])
        return value

    text = msgspec.json.encode(short(content)).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def quiet_gateway_logs() -> None:
    """The demo prints its own story; the gateway's info logs would drown it."""
    for name in (
        "arkrelay_core",
        "arkrelay_arkd",
        "arkrelay_lnd",
        "arkrelay_tapd",
        "arkrelay_nostr",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
