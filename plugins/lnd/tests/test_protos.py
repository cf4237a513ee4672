"""The lnd stubs carry lnd's wire names and numbers (their regeneration is checked with
every other pin's in plugins/arkd/tests/test_protos.py)."""

from __future__ import annotations

from arkrelay_lnd._proto import lightning_pb2
from arkrelay_lnd._proto.invoicesrpc import invoices_pb2
from arkrelay_lnd._proto.routerrpc import router_pb2
from arkrelay_lnd._proto.walletrpc import walletkit_pb2


def _fields(message: object) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]


def _methods(module: object, service: str) -> list[str]:
    return [m.name for m in module.DESCRIPTOR.services_by_name[service].methods]  # type: ignore[attr-defined]


def test_services_keep_lnds_packages_and_names() -> None:
    assert lightning_pb2.DESCRIPTOR.package == "lnrpc"
    assert lightning_pb2.DESCRIPTOR.name == "lightning.proto"
    assert invoices_pb2.DESCRIPTOR.package == "invoicesrpc"
    assert router_pb2.DESCRIPTOR.package == "routerrpc"
    assert walletkit_pb2.DESCRIPTOR.package == "walletrpc"
    assert _methods(router_pb2, "Router") == ["SendPaymentV2", "TrackPaymentV2"]
    assert _methods(invoices_pb2, "Invoices") == [
        "CancelInvoice",
        "AddHoldInvoice",
        "SettleInvoice",
    ]
    assert "SubscribeInvoices" in _methods(lightning_pb2, "Lightning")
    assert _methods(walletkit_pb2, "WalletKit") == ["PublishTransaction", "SendOutputs", "BumpFee"]


def test_field_numbers_are_lnds() -> None:
    invoice = _fields(lightning_pb2.Invoice)
    assert (invoice["r_hash"], invoice["value_msat"], invoice["state"]) == (4, 23, 21)
    assert (invoice["add_index"], invoice["settle_index"], invoice["amt_paid_msat"]) == (16, 17, 20)
    assert _fields(lightning_pb2.InvoiceSubscription) == {"add_index": 1, "settle_index": 2}
    assert lightning_pb2.Invoice.InvoiceState.Value("ACCEPTED") == 3
    payment = _fields(lightning_pb2.Payment)
    assert (payment["status"], payment["failure_reason"], payment["payment_preimage"]) == (
        10,
        16,
        6,
    )
    assert lightning_pb2.Payment.PaymentStatus.Value("INITIATED") == 4
    assert lightning_pb2.PaymentFailureReason.Value("FAILURE_REASON_NO_ROUTE") == 2
    send = _fields(router_pb2.SendPaymentRequest)
    assert (send["payment_request"], send["timeout_seconds"], send["fee_limit_sat"]) == (5, 6, 7)
    assert send["outgoing_chan_ids"] == 19 and "outgoing_chan_id" not in send
    hold = _fields(invoices_pb2.AddHoldInvoiceRequest)
    assert (hold["hash"], hold["value_msat"], hold["expiry"]) == (2, 10, 5)
    assert _fields(walletkit_pb2.SendOutputsRequest)["outputs"] == 2
    assert _fields(lightning_pb2.GetInfoResponse)["chains"] == 16
    bump = _fields(walletkit_pb2.BumpFeeRequest)
    assert (bump["outpoint"], bump["sat_per_vbyte"], bump["immediate"], bump["budget"]) == (
        1,
        5,
        6,
        7,
    )
    assert _fields(walletkit_pb2.Transaction) == {"tx_hex": 1, "label": 2}
    assert _fields(walletkit_pb2.PublishResponse) == {"publish_error": 1}
    tx = _fields(lightning_pb2.Transaction)
    assert (tx["raw_tx_hex"], tx["label"], tx["output_details"], tx["previous_outpoints"]) == (
        9,
        10,
        11,
        12,
    )
    detail = _fields(lightning_pb2.OutputDetail)
    assert (detail["output_index"], detail["is_our_address"]) == (4, 6)
    assert lightning_pb2.OutputScriptType.Value("SCRIPT_TYPE_NULLDATA") == 6
