"""The tapd stubs carry tapd's wire names and numbers, and share lnd's messages."""

from __future__ import annotations

from arkrelay_lnd._proto import lightning_pb2

from arkrelay_tapd._proto import taprootassets_pb2
from arkrelay_tapd._proto.mintrpc import mint_pb2
from arkrelay_tapd._proto.tapchannelrpc import tapchannel_pb2
from arkrelay_tapd._proto.universerpc import universe_pb2


def _fields(message: object) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]


def test_packages_and_field_numbers_are_tapds() -> None:
    assert taprootassets_pb2.DESCRIPTOR.package == "taprpc"
    assert tapchannel_pb2.DESCRIPTOR.package == "tapchannelrpc"
    add = _fields(tapchannel_pb2.AddInvoiceRequest)
    assert (add["asset_id"], add["asset_amount"], add["invoice_request"], add["hodl_invoice"]) == (
        1,
        2,
        4,
        5,
    )
    assert add["asset_min_amt"] == 9
    assert _fields(tapchannel_pb2.SendPaymentRequest)["payment_request"] == 4
    assert _fields(taprootassets_pb2.GetInfoResponse)["lnd_identity_pubkey"] == 4
    assert _fields(taprootassets_pb2.FetchAssetMetaResponse)["decimal_display"] == 5
    assert _fields(taprootassets_pb2.Asset)["decimal_display"] == 20
    assert _fields(mint_pb2.MintAsset)["decimal_display"] == 13
    assert mint_pb2.BatchState.Value("BATCH_STATE_FINALIZED") == 6
    assert _fields(universe_pb2.AssetProof) == {"key": 1, "asset_leaf": 4}


def test_lnd_messages_are_lnds_own() -> None:
    field = tapchannel_pb2.AddInvoiceRequest.DESCRIPTOR.fields_by_name["invoice_request"]
    assert field.message_type is lightning_pb2.Invoice.DESCRIPTOR
