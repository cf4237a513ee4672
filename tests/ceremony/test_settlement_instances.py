"""Two gateway instances on the machine's PostgreSQL settle with the anchor strategy through
one lnd simulator: one commitment per period, including when the leader is SIGKILLed
while its commitment is waiting for confirmations."""

from __future__ import annotations

import json

import sqlalchemy as sa
import trio

from arkrelay_core.nostr import bip340, decode_event, first_tag_value, verify_event
from arkrelay_core.servicekey import create_key_file
from arkrelay_core.settlement.merkle import commitment_payload, merkle_root
from arkrelay_core.store import create_engine_for, upgrade

from .outcomes import transfer_params
from .processes import (
    arkd_simulator,
    gateway_process,
    lightning_section,
    lnd_simulator,
    write_config,
)
from .wallet import ScriptedWallet

SETTLEMENT = """
[settlement]
plugin = "anchor"
every = "3s"
grace = "0s"
poll = "0.3s"
confirmations = 2
sat_per_vbyte = 2
bump_after = "2s"
"""
LEADER_LOG = "now holds settlement leadership"


def _rows(url: str, query: str) -> list:
    engine = create_engine_for(url)
    try:
        with engine.connect() as db:
            return list(db.execute(sa.text(query)).all())
    finally:
        engine.dispose()


async def _query(url: str, query: str) -> list:
    return await trio.to_thread.run_sync(_rows, url, query)


async def _wait(url: str, query: str, *, within: float, what: str) -> list:
    with trio.move_on_after(within):
        while True:
            found = await _query(url, query)
            if found:
                return found
            await trio.sleep(0.1)
    raise AssertionError(f"waited {within}s for {what}")


async def test_two_instances_one_commitment_per_period_leader_killed(
    tmp_path, relay, postgres_url
) -> None:
    secret = bip340.generate_secret_key()
    alice = bip340.xonly_public_key(secret).hex()
    bob = bip340.xonly_public_key(bip340.generate_secret_key()).hex()
    key = create_key_file(tmp_path / "gateway.key", "fault-test-passphrase")
    arkd, port = arkd_simulator(tmp_path, [(alice, 2_000) for _ in range(8)])
    ln_dir = tmp_path / "ln-sim"
    lnd = lnd_simulator(ln_dir)
    lnd.args += ["--block-interval", "2"]
    await trio.to_thread.run_sync(arkd.start, "arkd simulator ready", 120)
    await trio.to_thread.run_sync(lnd.start, "lnd simulator ready", 120)
    await trio.to_thread.run_sync(upgrade, postgres_url)
    lightning = lightning_section(ln_dir) + 'retries = 1\nbreaker_reset = "1s"\n' + SETTLEMENT
    gateways = {
        name: gateway_process(
            write_config(
                tmp_path / name,
                relay_url=relay.url,
                arkd_port=port,
                database=postgres_url,
                instance=name,
                lightning=lightning,
            )
        )
        for name in ("gw-a", "gw-b")
    }
    txids: list[str] = []
    try:
        for process in gateways.values():
            await trio.to_thread.run_sync(process.start, "gateway running")
        leader = await _leader(gateways)
        async with ScriptedWallet(relay.url, key.pubkey, secret=secret) as wallet:

            async def transfer() -> None:
                outcome = await wallet.run_ceremony(
                    wallet.intent("ark:transfer", transfer_params(bob, amount=100)), timeout=60
                )
                assert outcome.content.get("ark_txid"), outcome.content
                txids.append(outcome.content["ark_txid"])

            await transfer()
            await transfer()
            # The leader broadcast the period's commitment and waits for confirmations.
            [(first_id,)] = await _wait(
                postgres_url,
                "select id from settlements where state in ('committed', 'confirming')",
                within=30,
                what="a commitment waiting for confirmations",
            )
            await trio.to_thread.run_sync(gateways[leader].kill)
            survivor = next(n for n in gateways if n != leader)
            await _leader({survivor: gateways[survivor]})
            await transfer()
            await trio.sleep(3.5)  # into a later period
            await transfer()
            await _wait(
                postgres_url,
                "select count(*) from settlements having count(*) = count(*) "
                "filter (where state = 'published') and "
                f"(select count(*) from settlement_leaves) = {len(txids)}",
                within=60,
                what="every transaction in a published settlement",
            )
        roots = await _query(postgres_url, "select merkle_root from settlements order by id")
        in_wallet = await _op_returns(ln_dir, [root for (root,) in roots])
    finally:
        for process in gateways.values():
            process.kill()
        arkd.kill()
        lnd.kill()

    settlements = await _query(
        postgres_url,
        "select id, merkle_root, l1_txid, l2_tx_count, history from settlements order by id",
    )
    assert len(settlements) >= 2, settlements
    assert first_id in [s[0] for s in settlements]
    leaves = await _query(postgres_url, "select settlement_id, ark_txid from settlement_leaves")
    # Every finalized transaction is committed exactly once.
    assert sorted(t for _, t in leaves) == sorted(txids)
    by_settlement: dict[str, list[str]] = {}
    for sid, txid in leaves:
        by_settlement.setdefault(sid, []).append(txid)
    # One L1 transaction per settlement, each carrying that settlement's root.
    assert len({s[2] for s in settlements}) == len(settlements)
    for sid, root, _l1, count, history in settlements:
        assert root == merkle_root(by_settlement[sid]) and count == len(by_settlement[sid])
        states = [
            h["state"] for h in (history if isinstance(history, list) else json.loads(history))
        ]
        assert states.count("committed") == 1, (sid, states)
    # Exactly one 31342 per settlement, signed by the gateway, naming its L1 tx.
    outbox = await _query(postgres_url, "select event from outbox where kind = 31342")
    events = [
        decode_event(json.dumps(e if isinstance(e, dict) else json.loads(e))) for (e,) in outbox
    ]
    assert sorted(first_tag_value(e, "d") for e in events) == sorted(
        f"l1:{s[0]}" for s in settlements
    )
    for event in events:
        assert verify_event(event) and event.pubkey == key.pubkey
    l1 = {s[0]: s[2] for s in settlements}
    for event in events:
        sid = first_tag_value(event, "d").removeprefix("l1:")
        assert json.loads(event.content)["l1_txid"] == l1[sid]
    # The shared wallet holds one commitment per root, never a second for the same root.
    assert in_wallet == ([s[2] for s in settlements], len(settlements))


async def _leader(gateways: dict) -> str:
    with trio.move_on_after(30):
        while True:
            for name, process in gateways.items():
                if LEADER_LOG in process.log.read_text(errors="replace"):
                    return name
            await trio.sleep(0.1)
    raise AssertionError("no instance took settlement leadership")


async def _op_returns(ln_dir, roots: list[str]) -> tuple[list[str | None], int]:
    """The wallet transaction carrying each root's commitment, as the shared lnd sees it,
    and how many wallet transactions carry any ArkRelay commitment at all."""
    from arkrelay_wallet.lightning import node_client

    # OP_RETURN pushing 37 bytes: "ARKR", version 1, the root.
    marker = "6a25" + commitment_payload("00" * 32)[:5].hex()
    async with node_client(ln_dir, "gateway") as lnd:
        found = [await lnd.find_op_return(commitment_payload(root)) for root in roots]
        every = sum(marker in tx.raw_tx_hex for tx in await lnd._wallet_transactions())
    return [tx.txid if tx is not None else None for tx in found], every
