"""The simulated tapd's servicers: TaprootAssets, Mint, TaprootAssetChannels and Universe
over the pinned protos, one set per node of the network."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc
from arkrelay_lnd import bolt11codec
from arkrelay_lnd.sim import SimError, SimNetwork, SimNode
from arkrelay_lnd.sim.network import drain
from arkrelay_lnd.sim.service import payment_message

from arkrelay_core.errors import InvoiceInvalid

from .._proto import taprootassets_pb2, taprootassets_pb2_grpc
from .._proto.mintrpc import mint_pb2, mint_pb2_grpc
from .._proto.rfqrpc import rfq_pb2
from .._proto.tapchannelrpc import tapchannel_pb2, tapchannel_pb2_grpc
from .._proto.universerpc import universe_pb2, universe_pb2_grpc
from .ledger import MSAT_PER_UNIT, AssetLedger, SimAsset

__all__ = ["servicers"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_IDLE = 1.0
#: units per BTC at MSAT_PER_UNIT, as tapd's FixedPoint rates express prices.
_RATE = rfq_pb2.FixedPoint(coefficient=str(100_000_000_000 // MSAT_PER_UNIT), scale=0)


def _guard(context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except SimError as error:
        log.info("tapd sim: %s: %s", error.status, error.message)
        _abort(context, error)


def _abort(context: grpc.ServicerContext, error: SimError) -> NoReturn:
    context.abort(getattr(grpc.StatusCode, error.status), error.message)
    raise AssertionError("abort returned")


def _genesis(asset: SimAsset) -> taprootassets_pb2.GenesisInfo:
    return taprootassets_pb2.GenesisInfo(
        genesis_point=asset.genesis.genesis_point,
        name=asset.genesis.name,
        meta_hash=asset.meta_hash,
        asset_id=asset.asset_id,
        asset_type=asset.genesis.asset_type,
        output_index=asset.genesis.output_index,
    )


def _asset(asset: SimAsset, amount: int) -> taprootassets_pb2.Asset:
    return taprootassets_pb2.Asset(
        version=1,
        asset_genesis=_genesis(asset),
        amount=amount,
        script_key=bytes.fromhex("02" + asset.genesis.issuer),
        decimal_display=taprootassets_pb2.DecimalDisplay(decimal_display=asset.genesis.decimals),
    )


class TaprootAssetsServicer(taprootassets_pb2_grpc.TaprootAssetsServicer):
    def __init__(self, ledger: AssetLedger, node: SimNode) -> None:
        self.ledger, self.node = ledger, node

    def GetInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        chain = self.ledger.network.chain
        return taprootassets_pb2.GetInfoResponse(
            version=self.ledger.version,
            lnd_version="0.21.2-beta",
            network=self.ledger.network.network,
            lnd_identity_pubkey=self.node.pubkey,
            node_alias=self.node.name,
            block_height=chain.height,
            block_hash=chain.tip_hash(),
            sync_to_chain=True,
        )

    def ListAssets(self, request: Any, context: grpc.ServicerContext) -> Any:
        ledger, node = self.ledger, self.node
        with ledger.network.lock:
            balances = ledger.balances(node)
            listed = [_asset(ledger.assets[i], amount) for i, amount in balances.items()]
            unconfirmed = [
                asset
                for asset in (ledger.assets[i] for i in ledger.known.get(node.name, set()))
                if asset.mint_txid in node.wallet.txs and not ledger.confirmed(asset, node)
            ]
        if request.include_unconfirmed_mints:
            listed += [_asset(a, a.genesis.amount) for a in unconfirmed]
        return taprootassets_pb2.ListAssetResponse(
            assets=listed, unconfirmed_mints=len(unconfirmed)
        )

    def ListBalances(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.WhichOneof("group_by") != "asset_id":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "the simulator groups by asset id only")
        ledger = self.ledger
        with ledger.network.lock:
            balances = {
                asset_id.hex(): taprootassets_pb2.AssetBalance(
                    asset_genesis=_genesis(ledger.assets[asset_id]), balance=amount
                )
                for asset_id, amount in ledger.balances(self.node).items()
                if not request.asset_filter or asset_id == request.asset_filter
            }
        return taprootassets_pb2.ListBalancesResponse(asset_balances=balances)

    def FetchAssetMeta(self, request: Any, context: grpc.ServicerContext) -> Any:
        which = request.WhichOneof("asset")
        if which == "asset_id":
            asset_id = request.asset_id
        elif which == "asset_id_str":
            asset_id = bytes.fromhex(request.asset_id_str)
        else:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "the simulator looks up by asset id")
        asset = _guard(context, lambda: self.ledger.lookup(self.node, asset_id))
        return taprootassets_pb2.FetchAssetMetaResponse(
            data=asset.meta,
            type=taprootassets_pb2.META_TYPE_OPAQUE,
            meta_hash=asset.meta_hash,
            decimal_display=asset.genesis.decimals,
        )

    def VerifyProof(self, request: Any, context: grpc.ServicerContext) -> Any:
        valid, asset = _guard(context, lambda: self.ledger.verify_proof(request.raw_proof_file))
        return taprootassets_pb2.VerifyProofResponse(
            valid=valid,
            decoded_proof=taprootassets_pb2.DecodedProof(
                proof_at_depth=0,
                number_of_proofs=1,
                asset=_asset(asset, asset.genesis.amount),
                meta_reveal=taprootassets_pb2.AssetMeta(
                    data=asset.meta,
                    type=taprootassets_pb2.META_TYPE_OPAQUE,
                    meta_hash=asset.meta_hash,
                ),
            ),
        )


class MintServicer(mint_pb2_grpc.MintServicer):
    def __init__(self, ledger: AssetLedger, node: SimNode) -> None:
        self.ledger, self.node = ledger, node

    def MintAsset(self, request: Any, context: grpc.ServicerContext) -> Any:
        seed = request.asset
        _guard(
            context,
            lambda: self.ledger.mint(
                self.node,
                seed.name,
                seed.amount,
                decimals=seed.decimal_display,
                meta=seed.asset_meta.data,
            ),
        )
        return mint_pb2.MintAssetResponse(
            pending_batch=mint_pb2.MintingBatch(
                batch_key=bytes.fromhex(self.node.pubkey),
                state=mint_pb2.BATCH_STATE_PENDING,
                assets=[mint_pb2.PendingAsset(name=seed.name, amount=seed.amount)],
            )
        )

    def FinalizeBatch(self, request: Any, context: grpc.ServicerContext) -> Any:
        txid, minted = _guard(context, lambda: self.ledger.finalize(self.node))
        return mint_pb2.FinalizeBatchResponse(
            batch=mint_pb2.MintingBatch(
                batch_key=bytes.fromhex(self.node.pubkey),
                batch_txid=txid,
                state=mint_pb2.BATCH_STATE_BROADCAST,
                assets=[
                    mint_pb2.PendingAsset(name=a.genesis.name, amount=a.genesis.amount)
                    for a in minted
                ],
            )
        )


class ChannelsServicer(tapchannel_pb2_grpc.TaprootAssetChannelsServicer):
    def __init__(self, ledger: AssetLedger, node: SimNode) -> None:
        self.ledger, self.node = ledger, node

    def AddInvoice(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.invoice_request.value or request.invoice_request.value_msat:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "cannot set value or value_msat in invoice_request together with asset_amount",
            )
        hold = request.hodl_invoice.payment_hash if request.HasField("hodl_invoice") else None
        invoice = _guard(
            context,
            lambda: self.ledger.add_invoice(
                self.node,
                request.asset_id,
                request.asset_amount,
                memo=request.invoice_request.memo,
                expiry=request.invoice_request.expiry or 300,
                payment_hash=hold,
            ),
        )
        return tapchannel_pb2.AddInvoiceResponse(
            accepted_buy_quote=rfq_pb2.PeerAcceptedBuyQuote(
                peer=self.node.pubkey,
                id=os.urandom(32),
                asset_max_amount=request.asset_amount,
                ask_asset_rate=_RATE,
                expiry=invoice.creation_date + invoice.expiry,
            ),
            invoice_result={
                "r_hash": invoice.payment_hash,
                "payment_request": invoice.payment_request,
                "add_index": invoice.add_index,
                "payment_addr": invoice.payment_addr,
            },
        )

    def SendPayment(self, request: Any, context: grpc.ServicerContext) -> Any:
        inner = request.payment_request
        try:
            decoded = bolt11codec.decode(inner.payment_request)
        except InvoiceInvalid as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        payment_hash = bytes.fromhex(decoded.payment_hash)
        units = _guard(
            context,
            lambda: self.ledger.reserve(
                self.node, request.asset_id, payment_hash, decoded.amount_msat
            ),
        )
        network: SimNetwork = self.ledger.network
        try:
            subscription = network.pay(
                self.node,
                inner.payment_request,
                fee_limit_msat=inner.fee_limit_msat or inner.fee_limit_sat * 1000,
            )
        except SimError as error:
            self.ledger.release(self.node, payment_hash)
            _abort(context, error)
        context.add_callback(lambda: network.unsubscribe(self.node, subscription))
        context.send_initial_metadata(())
        yield tapchannel_pb2.SendPaymentResponse(
            accepted_sell_order=rfq_pb2.PeerAcceptedSellQuote(
                peer=decoded.destination,
                id=os.urandom(32),
                asset_amount=units,
                bid_asset_rate=_RATE,
            )
        )
        for update in drain(subscription, _IDLE):
            if not context.is_active():
                return
            if update is not None:
                yield tapchannel_pb2.SendPaymentResponse(payment_result=payment_message(update))


class UniverseServicer(universe_pb2_grpc.UniverseServicer):
    def __init__(self, ledger: AssetLedger, node: SimNode) -> None:
        self.ledger, self.node = ledger, node

    def InsertProof(self, request: Any, context: grpc.ServicerContext) -> Any:
        asset = _guard(
            context, lambda: self.ledger.import_proof(self.node, request.asset_leaf.proof)
        )
        if request.key.id.asset_id and request.key.id.asset_id != asset.asset_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "asset id does not match the proof")
        return universe_pb2.AssetProofResponse(
            req=request.key,
            asset_leaf=universe_pb2.AssetLeaf(
                asset=_asset(asset, asset.genesis.amount), proof=request.asset_leaf.proof
            ),
        )


def servicers(ledger: AssetLedger, node: SimNode) -> list[tuple[Callable[..., None], Any]]:
    return [
        (
            taprootassets_pb2_grpc.add_TaprootAssetsServicer_to_server,
            TaprootAssetsServicer(ledger, node),
        ),
        (mint_pb2_grpc.add_MintServicer_to_server, MintServicer(ledger, node)),
        (
            tapchannel_pb2_grpc.add_TaprootAssetChannelsServicer_to_server,
            ChannelsServicer(ledger, node),
        ),
        (universe_pb2_grpc.add_UniverseServicer_to_server, UniverseServicer(ledger, node)),
    ]
