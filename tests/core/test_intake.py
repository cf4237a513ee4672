"""Intent intake: each PROTOCOL.md §2 check answers with its own code, in a fixed order."""

from __future__ import annotations

import json

import msgspec
import pytest

from arkrelay_core.ceremony import FeeSchedule, check_intent, required_fee
from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import ProtocolViolation, UnknownAsset
from arkrelay_core.nostr import generate_secret_key, sign_event
from arkrelay_core.protocol import Fee, LandParams

NOW = 1_800_000_000
GBTC = "ab" * 32
USDT = "cd" * 32
TICKERS = {"gBTC": GBTC, "USDT": USDT}
BOB = "ef" * 32
WALLET = generate_secret_key()


def resolve(asset: str) -> str:
    if asset in TICKERS:
        return TICKERS[asset]
    if asset in TICKERS.values():
        return asset
    raise UnknownAsset(f"unknown or disabled asset {asset!r}")


def intent_event(*, created_at=NOW, **fields):
    content = {
        "action_id": "act-1",
        "type": "ark:transfer",
        "params": {
            "asset_id": "gBTC",
            "amount": 5000,
            "recipient_pubkey": BOB,
            "fee": {"asset_id": "gBTC", "amount": 10},
        },
        "expires_at": NOW + 600,
    }
    content.update(fields)
    return sign_event(
        WALLET, kind=31510, content=json.dumps(content), tags=[["d", "act-1"]],
        created_at=created_at,
    )  # fmt: skip


def check(event, **overrides):
    options = dict(now=NOW, network="regtest", resolve_asset=resolve, fees=FeeSchedule())
    options.update(overrides)
    return check_intent(event, **options)


def code_of(event, **overrides) -> int:
    with pytest.raises((ProtocolViolation, UnknownAsset)) as info:
        check(event, **overrides)
    return info.value.code


def test_a_good_transfer_is_accepted_with_tickers_resolved():
    accepted = check(intent_event(network="regtest", protocol_version="1.0"))
    assert accepted.action_type == "ark:transfer"
    assert accepted.asset_id == GBTC
    assert accepted.fee == Fee(GBTC, 10)
    assert accepted.params.recipient_pubkey == BOB


def test_aliases_and_legacy_fee_fields_are_accepted():
    accepted = check(
        intent_event(
            type="p2p_transfer",
            params={
                "asset_id": GBTC,
                "amount": 1,
                "recipient_pubkey": BOB,
                "fee_asset_id": "gBTC",
                "fee_amount": 10,
            },
        )
    )
    assert (accepted.action_type, accepted.fee) == ("ark:transfer", Fee(GBTC, 10))


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (sign_event(WALLET, kind=31510, content="{nope", created_at=NOW), 1002),
        (intent_event(action_id=""), 1002),
        (intent_event(expires_at=NOW), 1003),
        (intent_event(created_at=NOW - 3601), 1003),
        (intent_event(created_at=NOW + 601), 1003),
        (intent_event(network="mainnet"), 1006),
        (intent_event(protocol_version="2.0"), 1006),
        (intent_event(type="amm:swap"), 1005),
        (intent_event(params={"asset_id": "gBTC", "amount": 5, "recipient_pubkey": "x"}), 1002),
        (
            intent_event(params={"asset_id": "DOGE", "amount": 5, "recipient_pubkey": BOB}),
            2005,
        ),
        (intent_event(params={"asset_id": "gBTC", "amount": 5, "recipient_pubkey": BOB}), 4001),
        (
            intent_event(
                params={
                    "asset_id": "gBTC",
                    "amount": 5,
                    "recipient_pubkey": BOB,
                    "fee": {"asset_id": "gBTC", "amount": 9},
                }
            ),
            4001,
        ),
        (
            intent_event(
                params={
                    "asset_id": "gBTC",
                    "amount": 5,
                    "recipient_pubkey": BOB,
                    "fee": {"asset_id": "USDT", "amount": 10},
                }
            ),
            4001,
        ),
        (
            intent_event(
                params={
                    "asset_id": "gBTC",
                    "amount": 5,
                    "recipient_pubkey": BOB,
                    "fee": {"asset_id": "DOGE", "amount": 10},
                }
            ),
            4001,
        ),
    ],
    ids=[
        "not-json", "empty-action-id", "expired", "stale", "future", "wrong-network",
        "protocol-v2", "unknown-type", "bad-params", "unknown-asset", "missing-fee",
        "short-fee", "fee-in-wrong-asset", "fee-in-unknown-asset",
    ],
)  # fmt: skip
def test_each_bad_intent_gets_its_code(event, code):
    assert code_of(event) == code


def test_checks_run_in_protocol_order():
    # Expired *and* on the wrong network *and* of an unknown type: expiry is reported.
    assert code_of(intent_event(expires_at=NOW - 1, network="mainnet", type="amm:x")) == 1003
    # Wrong network and unknown type: the network is reported.
    assert code_of(intent_event(network="mainnet", type="amm:x")) == 1006


def test_land_fee_is_a_tenth_of_a_percent_rounded_up_in_the_landed_asset():
    schedule = FeeSchedule()
    for amount, fee in [(1, 1), (999, 1), (1000, 1), (1001, 2), (100_000, 100), (123_456, 124)]:
        params = LandParams(asset_id="USDT", amount=amount, lightning_invoice="lnbcrt1")
        assert required_fee(params, schedule, resolve) == Fee(USDT, fee)
    accepted = check(
        intent_event(
            type="lightning:land",
            params={
                "asset_id": "USDT",
                "amount": 100_000,
                "lightning_invoice": "lnbcrt1",
                "fee": {"asset_id": USDT, "amount": 100},
            },
        )
    )
    assert accepted.fee == Fee(USDT, 100)


def test_operators_set_their_own_fees():
    cheap = FeeSchedule(transfer=0)
    assert code_of(intent_event(), fees=cheap) == ErrorCode.FEE_INCORRECT
    event = intent_event(
        params={
            "asset_id": "gBTC",
            "amount": 5,
            "recipient_pubkey": BOB,
            "fee": {"asset_id": "gBTC", "amount": 0},
        }
    )
    assert check(event, fees=cheap).fee == Fee(GBTC, 0)


def test_plugin_types_decode_with_their_own_params_and_carry_no_fee_rule():
    class SwapParams(msgspec.Struct, forbid_unknown_fields=True):
        pair: str
        amount: int

    event = intent_event(type="amm:swap", params={"pair": "gBTC/USDT", "amount": 3})
    accepted = check(event, params_types={"amm:swap": SwapParams})
    assert (accepted.params, accepted.asset_id, accepted.fee) == (
        SwapParams("gBTC/USDT", 3), None, None,
    )  # fmt: skip
