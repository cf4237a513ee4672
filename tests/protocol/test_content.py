"""Every content Struct round-trips; decoding errors carry PROTOCOL.md codes."""

import msgspec
import pytest

from arkrelay_core.errors import ProtocolViolation
from arkrelay_core.protocol import (
    AssetInfo,
    BatchAccepted,
    Challenge,
    Confirmation,
    ErrorBody,
    ErrorCode,
    ErrorResponse,
    Fee,
    GetInfo,
    GetStatus,
    InfoResponse,
    Intent,
    L1Commitment,
    LandParams,
    LiftLightning,
    LiftPending,
    Notification,
    SigningResponse,
    SignTxContext,
    SplitParams,
    StatusResponse,
    SubmitBatch,
    SwapLegParams,
    SyncState,
    SyncStateResponse,
    TransferParams,
    VtxoEntry,
    VtxoMove,
    decode_content,
    decode_service_request,
    failure_notice,
    parse_params,
)

PK = "ab" * 32
MOVE = VtxoMove(vtxo_id="ff" * 32 + ":0", owner=PK, asset_id="cd" * 32, amount=990, ticker="gBTC")

SAMPLES = [
    Intent(action_id="a", type="ark:transfer", params={"x": 1}, expires_at=9, network="regtest"),
    TransferParams(asset_id="gBTC", amount=1, recipient_pubkey=PK, fee=Fee("gBTC", 10)),
    SplitParams(vtxo_id="t:0", asset_id="gBTC", split_amounts=[1, 2], fee=Fee("gBTC", 10)),
    LandParams(asset_id="gBTC", amount=100, lightning_invoice="lnbcrt1", fee=Fee("gBTC", 1)),
    SwapLegParams(asset_id="gBTC", amount=5, recipient_pubkey=PK, batch_id="b1"),
    Challenge(
        session_id="sess_x",
        type="sign_payload",
        payload_to_sign="00" * 32,
        payload_ref="sha256:" + "00" * 32,
        algo="BIP340",
        domain="d",
        step_index=1,
        step_total=1,
        expires_at=1,
        context={"payload": {"a": 1}},
    ),
    SignTxContext(
        psbt="cHNidP8=", input_index=0, tx_role="checkpoint", human="h", amount=1, asset_id="x"
    ),
    SigningResponse(session_id="s", type="sign_tx", signature="00" * 64, pubkey=PK),
    Confirmation(
        status="success",
        ark_txid="ee" * 32,
        spent=[MOVE],
        created=[MOVE, MOVE],
        timestamp=5,
        ref_action_id="a",
        fee_paid=Fee("gBTC", 10),
    ),
    failure_notice(ErrorCode.FEE_INCORRECT, "a"),
    L1Commitment(
        l1_txid="aa" * 32,
        block_height=101,
        merkle_root_of_l2_txs="bb" * 32,
        l2_tx_count=3,
        period_start=0,
        period_end=3600,
    ),
    Notification(type="lift_expired", message="invoice expired unpaid", payment_hash="cc" * 32),
    InfoResponse(
        request_id="r",
        action="get_info",
        status="ok",
        network="regtest",
        service_pubkey=PK,
        fees={"ark:transfer": {"asset_id": "gBTC", "amount": 10}},
        assets=[AssetInfo(asset_id="cd" * 32, ticker="gBTC", name="Gateway BTC")],
        plugins={"arkrelay-arkd": "0.1.0"},
    ),
    SyncStateResponse(
        request_id="r",
        action="sync_state",
        status="ok",
        vtxos=[VtxoEntry(vtxo_id="t:1", asset_id="x", amount=3, status="spendable", expires_at=9)],
        balances={"x": 3},
    ),
    LiftPending(
        request_id="r",
        action="lift_lightning",
        status="pending",
        invoice="lnbcrt1",
        payment_hash="cc" * 32,
        expires_at=5,
        asset_id="x",
        amount=100_000,
    ),
    StatusResponse(
        request_id="r",
        action="get_status",
        status="ok",
        session_id="sess_x",
        state="failed",
        step_index=2,
        step_total=4,
        error=ErrorBody(code=3002, message="signing step or session timed out", retryable=True),
    ),
    BatchAccepted(
        request_id="r", action="submit_batch", status="pending", batch_id="b", session_ids=["s"]
    ),
    ErrorResponse(
        request_id="r",
        action="lift_lightning",
        status="error",
        error=ErrorBody(code=2005, message="unknown or disabled asset", retryable=False),
    ),
]


@pytest.mark.parametrize("struct", SAMPLES, ids=lambda s: type(s).__name__)
def test_round_trip(struct):
    wire = msgspec.json.encode(struct)
    assert msgspec.json.decode(wire, type=type(struct)) == struct


def test_failure_notice_carries_code_message_and_retryable():
    note = failure_notice(ErrorCode.CIRCUIT_OPEN, "act-1")
    assert msgspec.to_builtins(note) == {
        "status": "failure",
        "code": 5005,
        "message": "backend circuit open, try later",
        "ref_action_id": "act-1",
        "retryable": True,
    }
    assert failure_notice(ErrorCode.VTXO_ALREADY_SPENT, "x").retryable is False


def test_confirmation_names_exactly_one_reference():
    with pytest.raises(ValueError, match="exactly one"):
        Confirmation(status="success", ark_txid="a", spent=[], created=[], timestamp=1)
    with pytest.raises(ValueError, match="exactly one"):
        Confirmation(
            status="success",
            ark_txid="a",
            spent=[],
            created=[],
            timestamp=1,
            ref_action_id="x",
            batch_id="y",
        )


def test_aliases_and_legacy_fee_fields():
    params = parse_params(
        "p2p_transfer",
        {
            "asset_id": "gBTC",
            "amount": 5,
            "recipient_pubkey": PK,
            "fee_asset_id": "gBTC",
            "fee_amount": 10,
        },
    )
    assert params == TransferParams("gBTC", 5, PK, Fee("gBTC", 10))
    land = parse_params("land_lightning", {"asset_id": "x", "amount": 1, "lightning_invoice": "l"})
    assert isinstance(land, LandParams)
    assert land.fee is None  # the fee policy answers 4001, not the schema
    leg = parse_params(
        "atomic_swap", {"asset_id": "x", "amount": 1, "recipient_pubkey": PK, "batch_id": "b"}
    )
    assert isinstance(leg, SwapLegParams)


@pytest.mark.parametrize(
    ("action", "params", "code", "where"),
    [
        ("amm:swap", {}, ErrorCode.UNSUPPORTED_ACTION, "amm:swap"),
        ("ark:transfer", {"asset_id": "x", "amount": 0, "recipient_pubkey": PK}, 1002, "$.amount"),
        ("ark:transfer", {"asset_id": "x", "amount": 1, "recipient_pubkey": "xy"}, 1002, "recip"),
        ("ark:transfer", {"asset_id": "x", "amount": 1.5, "recipient_pubkey": PK}, 1002, "amount"),
        ("vtxo:split", {"vtxo_id": "v", "asset_id": "x", "split_amounts": [5]}, 1002, "split"),
        ("lightning:land", {"asset_id": "x", "amount": 1}, 1002, "lightning_invoice"),
        ("ark:transfer", {"asset_id": "x", "amount": 1, "recipient_pubkey": PK, "z": 1}, 1002, "z"),
    ],
)
def test_bad_params_map_to_codes(action, params, code, where):
    with pytest.raises(ProtocolViolation) as info:
        parse_params(action, params)
    assert info.value.code == code
    assert where in str(info.value)


def test_intent_content_errors_are_1002():
    with pytest.raises(ProtocolViolation) as info:
        decode_content(
            b'{"action_id": "", "type": "ark:transfer", "params": {}, "expires_at": 1}', Intent
        )
    assert info.value.code == ErrorCode.MALFORMED_CONTENT
    with pytest.raises(ProtocolViolation):
        decode_content(b"not json", Intent)
    with pytest.raises(ProtocolViolation):
        decode_content(b'{"action_id":"a b","type":"t","params":{},"expires_at":1}', Intent)


def test_service_requests_decode_by_action():
    assert decode_service_request(b'{"action":"get_info","request_id":"r1"}') == GetInfo("r1")
    assert decode_service_request(
        b'{"action":"sync_state","request_id":"r","asset_id":"gBTC"}'
    ) == SyncState("r", "gBTC")
    assert decode_service_request(
        b'{"action":"lift_lightning","request_id":"r","asset_id":"gBTC","amount":100000}'
    ) == LiftLightning("r", "gBTC", 100_000)
    assert decode_service_request(
        b'{"action":"get_status","request_id":"r","session_id":"sess_1"}'
    ) == GetStatus("r", session_id="sess_1")
    batch = decode_service_request(
        b'{"action":"submit_batch","request_id":"r","batch_id":"b","intents":[{},{}]}'
    )
    assert isinstance(batch, SubmitBatch)
    assert batch.batch_id == "b"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"action":"mint_money","request_id":"r"}', ErrorCode.UNSUPPORTED_ACTION),
        (b'{"action":"lift_lightning","request_id":"r","asset_id":"x"}', 1002),
        (b'{"action":"lift_lightning","request_id":"r","asset_id":"x","amount":-1}', 1002),
        (b'{"request_id":"r"}', 1002),
        (b"[1,2]", 1002),
        (b"{", 1002),
        (b'{"action":"get_status","request_id":"r"}', 1002),
        (b'{"action":"get_status","request_id":"r","action_id":"a","session_id":"s"}', 1002),
        (b'{"action":"submit_batch","request_id":"r","batch_id":"b","intents":[{}]}', 1002),
    ],
)
def test_bad_service_requests(raw, code):
    with pytest.raises(ProtocolViolation) as info:
        decode_service_request(raw)
    assert info.value.code == code


def test_trailing_newline_does_not_slip_past_patterns():
    # re.search's "$" matches before a final newline; ids end up in d tags and keys.
    with pytest.raises(ProtocolViolation):
        decode_content(b'{"action_id":"abc\\n","type":"t","params":{},"expires_at":1}', Intent)
    with pytest.raises(ProtocolViolation):
        parse_params("ark:transfer", {"asset_id": "x", "amount": 1, "recipient_pubkey": PK + "\n"})
