"""Every PROTOCOL.md §7 code a bad intent or request can earn: exactly one 31341, and the
Ark backend is never called for input that fails validation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from arkrelay_core.codes import ErrorCode
from arkrelay_core.protocol import Kind

from .harness import board, running_gateway
from .outcomes import action_id, ark_calls, outcomes_for
from .wallet import OMIT, ScriptedWallet

GBTC = "gBTC"
BOB = "ab" * 32


def transfer(amount: int = 1_000, **changes) -> dict:
    params = {
        "asset_id": GBTC,
        "amount": amount,
        "recipient_pubkey": BOB,
        "fee": {"asset_id": GBTC, "amount": 10},
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not OMIT}


# (what is wrong, intent builder kwargs) -> the code
INTAKE_CASES = {
    "malformed params": (ErrorCode.MALFORMED_CONTENT, ("ark:transfer", transfer(amount=-5)), {}),
    "expired intent": (ErrorCode.EXPIRED, ("ark:transfer", transfer()), {"expires_in": -10}),
    "stale event": (
        ErrorCode.EXPIRED,
        ("ark:transfer", transfer()),
        # Computed when the case runs: a long suite may start it minutes after import.
        {"created_at": lambda: int(time.time()) + 900},
    ),
    "unknown type": (ErrorCode.UNSUPPORTED_ACTION, ("amm:swap", {"x": 1}), {}),
    "wrong network": (
        ErrorCode.WRONG_NETWORK,
        ("ark:transfer", transfer()),
        {"content_overrides": {"network": "mainnet"}},
    ),
    "unknown asset": (ErrorCode.UNKNOWN_ASSET, ("ark:transfer", transfer(asset_id="DOGE")), {}),
    "fee missing": (ErrorCode.FEE_INCORRECT, ("ark:transfer", transfer(fee=OMIT)), {}),
    "fee too small": (
        ErrorCode.FEE_INCORRECT,
        ("ark:transfer", transfer(fee={"asset_id": GBTC, "amount": 9})),
        {},
    ),
    "swap leg alone": (
        ErrorCode.BATCH_INVALID,
        ("ark:swap_leg", {**transfer(), "batch_id": "b1"}),
        {},
    ),
}


@pytest.fixture
async def gateway_and_wallet(tmp_path: Path, relay):
    async with (
        running_gateway(
            tmp_path / "gw", relay.url, extra='[ceremony]\nstep_timeout = "3s"\n'
        ) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as wallet,
    ):
        yield gateway, wallet


async def test_each_intake_refusal_is_one_failure_and_no_backend_call(gateway_and_wallet):
    gateway, wallet = gateway_and_wallet
    for name, (code, (kind, params), kwargs) in INTAKE_CASES.items():
        calls = ark_calls(gateway)
        kwargs = {k: v() if callable(v) else v for k, v in kwargs.items()}
        intent = wallet.intent(kind, params, **kwargs)
        print("case:", name)
        outcome = await wallet.run_ceremony(intent, timeout=15)
        assert outcome.event.kind == Kind.FAILURE, name
        assert outcome.content["code"] == code, (name, outcome.content)
        assert outcome.content["status"] == "failure"
        assert outcome.content["ref_action_id"] == action_id(intent)
        assert ["d", f"fail:{action_id(intent)}"] in outcome.event.tags
        assert ark_calls(gateway) == calls, f"{name}: the Ark backend was called"
        assert [k for k, _ in outcomes_for(gateway, intent.id)] == [Kind.FAILURE], name


async def test_replayed_action_id_is_1004_and_the_first_goes_on(gateway_and_wallet):
    gateway, wallet = gateway_and_wallet
    await board(gateway, wallet.pubkey, 5_000)
    first = wallet.intent("ark:transfer", transfer(), action_id="same")
    second = wallet.intent("ark:transfer", transfer(amount=2_000), action_id="same")
    outcome = await wallet.run_ceremony(first)
    assert outcome.event.kind == Kind.CONFIRMATION
    calls = ark_calls(gateway)
    again = await wallet.run_ceremony(second)
    assert again.content["code"] == ErrorCode.REPLAYED_ACTION
    assert ark_calls(gateway) == calls
    assert [k for k, _ in outcomes_for(gateway, first.id)] == [Kind.CONFIRMATION]


async def test_bad_signature_on_a_challenge_is_3003_and_nothing_is_submitted(
    gateway_and_wallet,
):
    gateway, wallet = gateway_and_wallet
    await board(gateway, wallet.pubkey, 5_000)
    intent = wallet.intent("ark:transfer", transfer())
    await wallet.publish(intent)
    challenge = await wallet.next(Kind.CHALLENGE)
    await wallet.answer(challenge, signature="00" * 64)
    outcome = await wallet.wait_outcome(action_id(intent), intent.id)
    assert outcome.content["code"] == ErrorCode.INVALID_SIGNING_RESPONSE
    ark = gateway.components.backends["ark"]
    assert [v.amount for v in await ark.list_vtxos(wallet.pubkey)] == [5_000]
    assert [k for k, _ in outcomes_for(gateway, intent.id)] == [Kind.FAILURE]


async def test_response_signed_by_another_key_is_3003(gateway_and_wallet):
    """The author's own 31512 carrying another key's signature of the payload, before
    SubmitTx: 3003. (The same from a third party's event is ignored, never fatal:
    test_third_parties.py.)"""
    gateway, wallet = gateway_and_wallet
    await board(gateway, wallet.pubkey, 5_000)
    intent = wallet.intent("ark:transfer", transfer())
    await wallet.publish(intent)
    challenge = await wallet.next(Kind.CHALLENGE)
    await wallet.answer(challenge, secret_override=bytes(range(1, 33)))
    outcome = await wallet.wait_outcome(action_id(intent), intent.id)
    assert outcome.content["code"] == ErrorCode.INVALID_SIGNING_RESPONSE


async def test_unanswered_step_times_out_with_3002(gateway_and_wallet):
    gateway, wallet = gateway_and_wallet
    await board(gateway, wallet.pubkey, 5_000)
    intent = wallet.intent("ark:transfer", transfer())
    await wallet.publish(intent)
    await wallet.next(Kind.CHALLENGE)
    outcome = await wallet.wait_outcome(action_id(intent), intent.id, timeout=30)
    assert outcome.content["code"] == ErrorCode.SIGNING_TIMEOUT
    status = await wallet.call("get_status", action_id=action_id(intent))
    assert status["state"] == "expired"
    assert status["error"]["code"] == ErrorCode.SIGNING_TIMEOUT


async def test_named_vtxo_of_someone_else_is_2003_and_spent_one_is_2002(gateway_and_wallet, relay):
    gateway, wallet = gateway_and_wallet
    async with ScriptedWallet(relay.url, gateway.identity.pubkey) as other:
        theirs = await board(gateway, other.pubkey, 5_000)
        await board(gateway, wallet.pubkey, 5_000)
        intent = wallet.intent("ark:transfer", transfer(vtxo_ids=[theirs.vtxo_id]))
        outcome = await wallet.run_ceremony(intent)
        assert outcome.content["code"] == ErrorCode.VTXO_NOT_OWNED
        mine = await board(gateway, wallet.pubkey, 2_000)
        spend = wallet.intent("ark:transfer", transfer(vtxo_ids=[mine.vtxo_id]))
        assert (await wallet.run_ceremony(spend)).event.kind == Kind.CONFIRMATION
        again = wallet.intent("ark:transfer", transfer(vtxo_ids=[mine.vtxo_id]))
        outcome = await wallet.run_ceremony(again)
        assert outcome.content["code"] == ErrorCode.VTXO_ALREADY_SPENT


async def test_undecryptable_request_is_1007(gateway_and_wallet):
    _, wallet = gateway_and_wallet
    request = wallet.request("get_info")
    from arkrelay_core.nostr import sign_event

    garbled = sign_event(
        wallet.secret, kind=request.kind, content="AgAAAA" + "A" * 80, tags=request.tags
    )
    await wallet.publish(garbled)
    notice = await wallet.next(Kind.FAILURE, match=lambda r: ["e", garbled.id] in r.event.tags)
    assert notice.content["code"] == ErrorCode.CANNOT_DECRYPT


async def test_unknown_service_action_is_1005_and_rate_limit_is_1008(tmp_path: Path, relay):
    extra = "[ceremony]\nrequests_per_minute = 3\n"
    async with (
        running_gateway(tmp_path / "gw", relay.url, extra=extra) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as wallet,
    ):
        bad = wallet.request("mint_money")
        await wallet.publish(bad)
        notice = await wallet.next(Kind.FAILURE, match=lambda r: ["e", bad.id] in r.event.tags)
        assert notice.content["code"] == ErrorCode.UNSUPPORTED_ACTION
        for _ in range(3):
            await wallet.call("get_info")
        late = wallet.request("get_info")
        await wallet.publish(late)
        notice = await wallet.next(Kind.FAILURE, match=lambda r: ["e", late.id] in r.event.tags)
        assert notice.content["code"] == ErrorCode.RATE_LIMITED
        assert notice.content["retryable"] is True


async def test_expired_vtxo_is_2004(gateway_and_wallet):
    gateway, wallet = gateway_and_wallet
    vtxo = await board(gateway, wallet.pubkey, 5_000)
    gateway.components.backends["ark"].simulator.expire(vtxo.vtxo_id)
    intent = wallet.intent("ark:transfer", transfer(vtxo_ids=[vtxo.vtxo_id]))
    outcome = await wallet.run_ceremony(intent)
    assert outcome.content["code"] == ErrorCode.VTXO_EXPIRED


async def test_open_session_cap_is_1008(tmp_path: Path, relay):
    extra = "[ceremony]\nmax_open_sessions = 1\n"
    async with (
        running_gateway(tmp_path / "gw", relay.url, extra=extra) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as wallet,
    ):
        await board(gateway, wallet.pubkey, 5_000)
        await board(gateway, wallet.pubkey, 5_000)
        first = wallet.intent("ark:transfer", transfer())
        await wallet.publish(first)
        await wallet.next(Kind.CHALLENGE)  # the first session is open, waiting
        calls = ark_calls(gateway)
        second = wallet.intent("ark:transfer", transfer())
        outcome = await wallet.run_ceremony(second)
        assert outcome.content["code"] == ErrorCode.RATE_LIMITED
        assert ark_calls(gateway) == calls


async def test_ark_backend_down_is_5001_then_circuit_open_5005(tmp_path: Path, relay):
    ark = 'retries = 0\ncall_timeout = "2s"\nbreaker_failures = 2\nbreaker_reset = "5m"\n'
    async with (
        running_gateway(tmp_path / "gw", relay.url, ark_settings=ark) as gateway,
        ScriptedWallet(relay.url, gateway.identity.pubkey) as wallet,
    ):
        backend = gateway.components.backends["ark"]
        await board(gateway, wallet.pubkey, 5_000)
        await trio.to_thread.run_sync(backend.simulator.stop)
        codes = []
        for _ in range(3):
            calls = ark_calls(gateway)
            outcome = await wallet.run_ceremony(wallet.intent("ark:transfer", transfer()))
            codes.append(outcome.content["code"])
        assert codes == [
            ErrorCode.ARK_UNAVAILABLE,
            ErrorCode.ARK_UNAVAILABLE,
            ErrorCode.CIRCUIT_OPEN,
        ]
        assert ark_calls(gateway) == calls  # the open breaker called nobody
