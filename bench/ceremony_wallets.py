"""The simulated wallets of ``bench/ceremony.py``, in their own process and trio loop.

A process of their own keeps the wallets' signing and framing off the gateway's CPU.
Started by the benchmark with the path of a plan (JSON, :class:`Plan`); it talks to the
benchmark over stdin/stdout, one JSON line each way per step:

    wallets -> "ready"                  every wallet connected and knows the Ark terms
    bench   -> "go"                     run the transfer ceremonies
    wallets -> {"elapsed", "cpu", "sent_span", "ceremonies": [[lag, first challenge,
                outcome, result], ...]} one record per ceremony (see :class:`Timing`)
    bench   -> "open" | "quit"
    wallets -> {"open": {...}}          (after "open") every held session got its challenge
    bench   -> "quit"

Each wallet is the reference :class:`arkrelay_wallet.Wallet` with two changes for a
benchmark: it subscribes only to what is addressed to it (the reference wallet also
hears every confirmation the gateway signs, which with K wallets costs K times the
fan-out and fills their inboxes), and it notes when each challenge and outcome arrived.
With ``checks = "minimal"`` it signs ``payload_to_sign`` without recomputing it from the
PSBT (the careful checks are the wallet's own cost, not the gateway's).
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import trio
from arkrelay_wallet import CeremonyTimeout, Received, Wallet
from arkrelay_wallet.link import RelayLink

from arkrelay_core.nostr import Event, bip340, encrypt_dm, sign_event, tag_values
from arkrelay_core.protocol import Kind, challenge_d, session_id_for

#: How long one ceremony (or one held session's first challenge) may take before it
#: counts as timed out; far above any latency worth reporting.
CEREMONY_TIMEOUT = 120.0
#: Intents of held sessions in flight at once (published, first challenge not yet in).
HOLD_IN_FLIGHT = 64


class Timing(msgspec.Struct):
    """One ceremony as the wallet saw it; times in seconds on the wallet's trio clock."""

    start: float
    #: How late the intent went out against the offered schedule (0 when flat out).
    lag: float = 0.0
    first_challenge: float | None = None
    outcome: float | None = None
    #: "ok", "failed:<code>" or "timeout".
    result: str = "pending"


class BenchWallet(Wallet):
    def __init__(
        self, url: str, gateway: str, secret: bytes, *, careful: bool, reconnect: bool = False
    ) -> None:
        super().__init__(url, gateway, secret=secret, trace=self._note, reconnect=reconnect)
        self.careful_checks = careful
        self._by_session: dict[str, Timing] = {}
        self._by_intent: dict[str, Timing] = {}
        self._settled: dict[str, trio.Event] = {}

    def filters(self) -> list[dict[str, Any]]:
        return [{"kinds": [int(k) for k in self.ADDRESSED_KINDS], "#p": [self.pubkey]}]

    def track(self, intent: Event, timing: Timing) -> trio.Event:
        """Note arrival times for ``intent``'s session; the event is set at its first
        challenge or its outcome, whichever comes first."""
        self._by_session[session_id_for(intent.id)] = timing
        self._by_intent[intent.id] = timing
        settled = self._settled[intent.id] = trio.Event()
        return settled

    def forget(self, intent: Event) -> None:
        self._by_session.pop(session_id_for(intent.id), None)
        self._by_intent.pop(intent.id, None)
        self._settled.pop(intent.id, None)

    def _note(self, _link: RelayLink, direction: str, received: Received) -> None:
        if direction != "<-":
            return
        now = trio.current_time()
        event = received.event
        if event.kind == Kind.CHALLENGE:
            timing = self._by_session.get(str(received.content.get("session_id")))
            if timing is not None and timing.first_challenge is None:
                timing.first_challenge = now
                self._settle(event, timing)
        elif event.kind in (Kind.CONFIRMATION, Kind.FAILURE):
            for intent_id in tag_values(event, "e"):
                timing = self._by_intent.get(intent_id)
                if timing is not None and timing.outcome is None:
                    timing.outcome = now
                    settled = self._settled.get(intent_id)
                    if settled is not None:
                        settled.set()

    def _settle(self, challenge: Event, timing: Timing) -> None:
        for intent_id in tag_values(challenge, "e"):
            if self._by_intent.get(intent_id) is timing and intent_id in self._settled:
                self._settled[intent_id].set()

    def build_answer(self, challenge: Received, **overrides: Any) -> Event:
        if self.careful_checks or overrides:
            return super().build_answer(challenge, **overrides)
        content = challenge.content
        signature = bip340.schnorr_sign(self.secret, bytes.fromhex(content["payload_to_sign"]))
        answer = {
            "session_id": content["session_id"],
            "type": content["type"],
            "signature": signature.hex(),
            "payload_ref": content["payload_ref"],
            "algo": "BIP340",
            "pubkey": self.pubkey,
        }
        return sign_event(
            self.secret,
            kind=int(Kind.SIGNING_RESPONSE),
            content=encrypt_dm(
                self.secret,
                self.gateway_pubkey,
                msgspec.json.encode(answer).decode(),
                challenge.scheme or self.scheme,
            ),
            tags=[
                ["p", self.gateway_pubkey],
                ["d", challenge_d(content["session_id"], content["step_index"])],
                ["e", challenge.event.id],
            ],
        )


class Chain:
    """One wallet's line of VTXOs: each transfer spends the current one and the change
    it creates is the next, so ceremonies on different chains never touch the same VTXO."""

    def __init__(self, wallet: BenchWallet, vtxo: str) -> None:
        self.wallet = wallet
        self.vtxo = vtxo


class Plan(msgspec.Struct):
    url: str
    gateway: str
    #: One entry per ceremony wallet: its secret (hex) and its VTXOs, one chain each.
    wallets: list[tuple[str, list[str]]]
    ceremonies: int
    #: Intents per second offered, Poisson arrivals, one chain per intent; None runs
    #: every chain back to back.
    rate: float | None
    checks: str
    amount: int
    fee: int
    asset: str
    #: Wallets whose sessions are opened and left waiting for their first signature.
    holders: list[tuple[str, list[str]]] = []
    #: Run through an external relay: reconnect if it drops a connection.
    reconnect: bool = False
    #: Seed of the arrival times (None: a fresh draw).
    seed: int | None = None


def _transfer(plan: Plan, vtxo: str, recipient: str) -> dict[str, Any]:
    return {
        "asset_id": plan.asset,
        "amount": plan.amount,
        "recipient_pubkey": recipient,
        "fee": {"asset_id": plan.asset, "amount": plan.fee},
        "vtxo_ids": [vtxo],
    }


async def _ceremony(
    plan: Plan, chain: Chain, recipient: str, *, due: float | None = None
) -> Timing:
    """One transfer on ``chain``; with ``due``, its times count from then (open arrivals:
    a late start is the wallets' lag, and it is in the latencies)."""
    wallet = chain.wallet
    intent = wallet.intent("ark:transfer", _transfer(plan, chain.vtxo, recipient))
    now = trio.current_time()
    timing = Timing(start=now if due is None else due, lag=0.0 if due is None else now - due)
    wallet.track(intent, timing)
    try:
        outcome = await wallet.run_ceremony(intent, timeout=CEREMONY_TIMEOUT)
    except CeremonyTimeout:
        timing.result = "timeout"
        return timing
    finally:
        wallet.forget(intent)
    if outcome.event.kind == Kind.CONFIRMATION:
        timing.result = "ok"
        change = [m for m in outcome.content.get("created", []) if m["owner"] == wallet.pubkey]
        if change:
            chain.vtxo = change[0]["vtxo_id"]
    else:
        timing.result = f"failed:{outcome.content.get('code')}"
    return timing


async def run_ceremonies(plan: Plan, chains: list[Chain]) -> tuple[list[Timing], float]:
    """Every ceremony's timing, and the seconds from the first intent's due time to the
    last one's (0 flat out)."""
    recipient = bip340.xonly_public_key(bip340.generate_secret_key()).hex()
    timings: list[Timing] = []

    async def back_to_back(chain: Chain, count: int) -> None:
        for _ in range(count):
            timings.append(await _ceremony(plan, chain, recipient))

    async def due(chain: Chain, at: float) -> None:
        timings.append(await _ceremony(plan, chain, recipient, due=at))

    async with trio.open_nursery() as nursery:
        if plan.rate is None:
            per, extra = divmod(plan.ceremonies, len(chains))
            for i, chain in enumerate(chains):
                nursery.start_soon(back_to_back, chain, per + (i < extra))
            return timings, 0.0
        # Open arrivals: intent i goes out at its due time whatever is in flight, on a VTXO
        # of its own (chains were made one per intent), so waiting in the gateway shows
        # in the latencies instead of holding the next intent back.
        draw = random.Random(plan.seed)
        start = at = trio.current_time()
        for i in range(plan.ceremonies):
            if i:
                at += draw.expovariate(plan.rate)
            await trio.sleep_until(at)
            nursery.start_soon(due, chains[i], at)
    return timings, at - start


async def open_sessions(plan: Plan, holders: list[BenchWallet]) -> dict[str, Any]:
    """Open one session per held VTXO and wait until each has its first challenge."""
    recipient = bip340.xonly_public_key(bip340.generate_secret_key()).hex()
    results: dict[str, int] = {}
    limiter = trio.CapacityLimiter(HOLD_IN_FLIGHT)
    start = trio.current_time()

    async def hold(wallet: BenchWallet, vtxo: str) -> None:
        async with limiter:
            intent = wallet.intent(
                "ark:transfer", _transfer(plan, vtxo, recipient), expires_in=3600
            )
            timing = Timing(start=trio.current_time())
            settled = wallet.track(intent, timing)
            await wallet.publish(intent, timeout=CEREMONY_TIMEOUT)
            with trio.move_on_after(CEREMONY_TIMEOUT):
                await settled.wait()
            wallet.forget(intent)
        if timing.first_challenge is not None:
            key = "open"
        elif timing.outcome is not None:
            key = "refused"
        else:
            key = "timeout"
        results[key] = results.get(key, 0) + 1

    async with trio.open_nursery() as nursery:
        for wallet, (_, vtxos) in zip(holders, plan.holders, strict=True):
            for vtxo in vtxos:
                nursery.start_soon(hold, wallet, vtxo)
    return {"elapsed": trio.current_time() - start, **results}


# ---------------------------------------------------------------------------- plumbing


def _say(message: object) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _hear() -> str:
    line = await trio.to_thread.run_sync(sys.stdin.readline)
    if not line:
        raise SystemExit("the benchmark went away")
    return line.strip()


async def _connect(
    stack: contextlib.AsyncExitStack, plan: Plan, entries: list[tuple[str, list[str]]]
) -> list[BenchWallet]:
    wallets = []
    for secret, _ in entries:
        wallet = BenchWallet(
            plan.url,
            plan.gateway,
            bytes.fromhex(secret),
            careful=plan.checks == "careful",
            reconnect=plan.reconnect,
        )
        await stack.enter_async_context(wallet)
        wallets.append(wallet)
    return wallets


async def main(plan: Plan) -> None:
    async with contextlib.AsyncExitStack() as stack:
        wallets = await _connect(stack, plan, plan.wallets)
        holders = await _connect(stack, plan, plan.holders)
        # Terms are loaded before the clock starts; the minimal wallet never uses them,
        # but the reference answer() would fetch them on the first sign_tx otherwise.
        for wallet in wallets:
            await wallet.load_terms()
        # Wallet by wallet in turn, so consecutive intents come from different wallets.
        owned = list(zip(wallets, plan.wallets, strict=True))
        most = max((len(vtxos) for _, (_, vtxos) in owned), default=0)
        chains = [
            Chain(wallet, vtxos[j])
            for j in range(most)
            for wallet, (_, vtxos) in owned
            if j < len(vtxos)
        ]
        _say("ready")
        if await _hear() != "go":
            return
        cpu, start = time.process_time(), trio.current_time()
        timings, span = await run_ceremonies(plan, chains) if plan.ceremonies else ([], 0.0)
        _say(
            {
                "elapsed": trio.current_time() - start,
                "cpu": time.process_time() - cpu,
                "sent_span": span,
                "ceremonies": [
                    [
                        t.lag,
                        None if t.first_challenge is None else t.first_challenge - t.start,
                        None if t.outcome is None else t.outcome - t.start,
                        t.result,
                    ]
                    for t in timings
                ],
            }
        )
        if await _hear() != "open":
            return
        cpu = time.process_time()
        opened = await open_sessions(plan, holders)
        _say({"open": {**opened, "cpu": time.process_time() - cpu}})
        await _hear()


if __name__ == "__main__":
    trio.run(main, msgspec.json.decode(Path(sys.argv[1]).read_bytes(), type=Plan))
