"""TapdBackend: the AssetBackend of arkrelay_core, over tapd's gRPC API (or the
simulator's).

Balances, metadata and proofs go through TaprootAssets and Universe, minting through Mint
(MintAsset then FinalizeBatch, then the asset id from ListAssets), asset invoices and
payments through TaprootAssetChannels (litd in integrated mode, or the simulator).
Payments follow lnd's rule: unknown is pending.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import grpc
import trio
from arkrelay_lnd import bolt11codec
from arkrelay_lnd.daemon import DaemonClient
from arkrelay_lnd.payments import PaymentBook, follow_payment
from arkrelay_lnd.sim import SimNetwork

from arkrelay_core.errors import UnknownAsset, UnsupportedOperation
from arkrelay_core.grpcutil import Backoff
from arkrelay_core.interfaces import (
    AssetBackendInfo,
    AssetBalance,
    AssetMeta,
    Invoice,
    InvoiceState,
    Payment,
    PluginContext,
)

from ._proto import taprootassets_pb2, taprootassets_pb2_grpc
from ._proto.mintrpc import mint_pb2, mint_pb2_grpc
from ._proto.tapchannelrpc import tapchannel_pb2, tapchannel_pb2_grpc
from ._proto.universerpc import universe_pb2, universe_pb2_grpc
from .errors import answered, map_rpc_error, unavailable
from .settings import TapdSettings
from .sim import TapdSimulator

__all__ = ["TapdBackend"]

log = logging.getLogger(__name__)

_MEMORY = 4096
#: The Taproot Asset backing the gateway's gBTC.
RESERVE_NAME = "gBTC"


class _Stubs:
    def __init__(self, channel: grpc.Channel) -> None:
        self.assets = taprootassets_pb2_grpc.TaprootAssetsStub(channel)
        self.mint = mint_pb2_grpc.MintStub(channel)
        self.channels = tapchannel_pb2_grpc.TaprootAssetChannelsStub(channel)
        self.universe = universe_pb2_grpc.UniverseStub(channel)


class TapdBackend(DaemonClient):
    """A tapd client. With no ``target`` configured it runs (and owns) a tapd simulator
    over the gateway's simulated network, and uses its ``gateway`` node."""

    daemon = "tapd"
    map_error = staticmethod(map_rpc_error)
    unavailable = staticmethod(unavailable)
    settings: TapdSettings

    def __init__(
        self,
        settings: TapdSettings,
        context: PluginContext | None = None,
        *,
        simulator: TapdSimulator | None = None,
        node: str = "gateway",
    ) -> None:
        super().__init__(settings, context, simulator=simulator, node=node)
        self.features = frozenset(
            {"asset_channels"} if settings.asset_channels or self._simulated else set()
        )
        self._stubs: _Stubs | None = None
        self._payments = PaymentBook(_MEMORY)
        self._names: dict[str, str] = {}
        #: The gBTC reserve the owned simulator minted at start.
        self.reserve: AssetMeta | None = None

    def build_simulator(self, network: SimNetwork) -> TapdSimulator:
        for name in ("gateway", "outside"):
            if name not in network.nodes:
                network.add_node(name)
        return TapdSimulator(network)

    def connected(self, channel: grpc.Channel) -> None:
        self._stubs = _Stubs(channel)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect; an owned simulator first gets its gBTC reserve, so the gateway starts
        with its asset minted."""
        parent = super()
        async with trio.open_nursery() as nursery:
            await nursery.start(parent.serve)
            if self._owns_simulator and self.settings.simulator_gbtc_reserve > 0:
                self.reserve = await self._mint_reserve(self.settings.simulator_gbtc_reserve)
            task_status.started()

    async def _mint_reserve(self, units: int) -> AssetMeta:
        for balance in await self.list_balances():
            if balance.name == RESERVE_NAME:
                return AssetMeta(balance.asset_id, balance.name)
        minted = await self.mint_asset(RESERVE_NAME, units)
        # Confirm the minting transaction, as a regtest operator would, so the simulated
        # wallet's change is spendable again.
        assert self.simulator is not None
        await trio.to_thread.run_sync(self.simulator.network.mine)
        log.info(
            "minted the gBTC reserve on the tapd simulator: %d units, asset %s",
            units,
            minted.asset_id,
        )
        return minted

    def statistics(self) -> Mapping[str, Any]:
        reserve = {"gbtc_reserve": self.reserve.asset_id} if self.reserve is not None else {}
        return {**self.connection_statistics(), **self._payments.statistics(), **reserve}

    def _rpc(self) -> _Stubs:
        if self._stubs is None:
            raise RuntimeError("TapdBackend.serve() has not started")
        return self._stubs

    # ------------------------------------------------------------------ assets

    async def get_info(self) -> AssetBackendInfo:
        resp = await self.caller.call(
            "GetInfo",
            self._rpc().assets.GetInfo,
            taprootassets_pb2.GetInfoRequest(),
            idempotent=True,
        )
        return AssetBackendInfo(
            version=resp.version,
            network=resp.network,
            block_height=resp.block_height,
            lnd_pubkey=resp.lnd_identity_pubkey,
        )

    async def list_balances(self) -> list[AssetBalance]:
        resp = await self.caller.call(
            "ListBalances",
            self._rpc().assets.ListBalances,
            taprootassets_pb2.ListBalancesRequest(asset_id=True),
            idempotent=True,
        )
        out = []
        for asset_id, balance in sorted(resp.asset_balances.items()):
            self._names[asset_id] = balance.asset_genesis.name
            out.append(AssetBalance(asset_id, balance.asset_genesis.name, balance.balance))
        return out

    async def fetch_asset_meta(self, asset_id: str) -> AssetMeta:
        request = taprootassets_pb2.FetchAssetMetaRequest(asset_id=_asset_id(asset_id))
        resp = await self.caller.call(
            "FetchAssetMeta", self._rpc().assets.FetchAssetMeta, request, idempotent=True
        )
        name = self._names.get(asset_id) or await self._name_from_listing(asset_id)
        return AssetMeta(
            asset_id=asset_id, name=name, decimals=resp.decimal_display, meta=bytes(resp.data)
        )

    async def _name_from_listing(self, asset_id: str) -> str:
        for asset in await self._list_assets():
            if asset.asset_genesis.asset_id.hex() == asset_id:
                return asset.asset_genesis.name
        return ""

    async def _list_assets(self) -> list[Any]:
        resp = await self.caller.call(
            "ListAssets",
            self._rpc().assets.ListAssets,
            taprootassets_pb2.ListAssetRequest(include_unconfirmed_mints=True),
            idempotent=True,
        )
        for asset in resp.assets:
            self._names[asset.asset_genesis.asset_id.hex()] = asset.asset_genesis.name
        return list(resp.assets)

    async def mint_asset(self, name: str, amount: int, *, decimals: int = 0) -> AssetMeta:
        """Mint ``amount`` units of a new asset called ``name`` and finalize the batch;
        returns once tapd lists the asset (its id is known; confirmation comes later)."""
        mint = self._rpc().mint
        seed = mint_pb2.MintAsset(
            asset_version=taprootassets_pb2.ASSET_VERSION_V1,
            asset_type=taprootassets_pb2.NORMAL,
            name=name,
            amount=amount,
            decimal_display=decimals,
        )
        await self.caller.call(
            "MintAsset",
            mint.MintAsset,
            mint_pb2.MintAssetRequest(asset=seed, short_response=True),
            idempotent=False,
        )
        done = await self.caller.call(
            "FinalizeBatch",
            mint.FinalizeBatch,
            mint_pb2.FinalizeBatchRequest(
                short_response=True, fee_rate=self.settings.mint_fee_rate
            ),
            idempotent=False,
        )
        txid = done.batch.batch_txid
        backoff = Backoff(0.1, 2)
        # tapd gives no push for "asset id known": it shows in ListAssets once the batch
        # transaction exists.
        with trio.fail_after(self.settings.mint_timeout.seconds):
            while True:
                for asset in await self._list_assets():
                    genesis = asset.asset_genesis
                    if genesis.name == name and genesis.genesis_point.startswith(txid):
                        return AssetMeta(genesis.asset_id.hex(), name, decimals, b"")
                await backoff.sleep()

    async def create_asset_invoice(
        self,
        asset_id: str,
        asset_amount: int,
        *,
        memo: str,
        expiry: int,
        hold_payment_hash: str | None = None,
    ) -> Invoice:
        self._need_channels()
        request = tapchannel_pb2.AddInvoiceRequest(
            asset_id=_asset_id(asset_id),
            asset_amount=asset_amount,
            invoice_request={"memo": memo, "expiry": expiry},
        )
        if hold_payment_hash is not None:
            request.hodl_invoice.payment_hash = bytes.fromhex(hold_payment_hash)
        resp = await self.caller.call(
            "AddInvoice", self._rpc().channels.AddInvoice, request, idempotent=False
        )
        result = resp.invoice_result
        decoded = bolt11codec.decode(result.payment_request)
        return Invoice(
            payment_hash=result.r_hash.hex(),
            bolt11=result.payment_request,
            amount_msat=decoded.amount_msat,
            state=InvoiceState.OPEN,
            expires_at=decoded.expires_at,
            memo=memo,
            add_index=result.add_index,
        )

    async def pay_asset_invoice(
        self, asset_id: str, bolt11: str, *, fee_limit_sat: int, timeout_seconds: int
    ) -> Payment:
        """Pay ``bolt11`` with units of ``asset_id`` over asset channels. SUCCEEDED,
        FAILED (definitely), or PENDING when the outcome is unknown."""
        self._need_channels()
        payment_hash = bolt11codec.decode(bolt11).payment_hash
        self.caller.breaker.check()
        self._payments.begin(payment_hash)
        payment = None
        try:
            request = tapchannel_pb2.SendPaymentRequest(
                asset_id=_asset_id(asset_id),
                payment_request={
                    "payment_request": bolt11.strip(),
                    "fee_limit_sat": fee_limit_sat,
                    "timeout_seconds": timeout_seconds,
                },
            )
            wait = timeout_seconds + self.settings.pay_grace.seconds
            call = self._rpc().channels.SendPayment(
                request, metadata=self.caller.metadata, timeout=wait
            )
            payment = await follow_payment(
                self.caller,
                call,
                "SendPayment",
                payment_hash,
                wait,
                payment_of=_payment_result,
                map_error=map_rpc_error,
                refusal=answered,
            )
        finally:
            self._payments.end(payment_hash, payment)
        return payment

    async def import_proof(self, proof: bytes) -> AssetMeta:
        """Verify a proof (VerifyProof) and insert it into the local universe, so tapd
        knows an asset it has never held."""
        assets = self._rpc().assets
        verified = await self.caller.call(
            "VerifyProof",
            assets.VerifyProof,
            taprootassets_pb2.ProofFile(raw_proof_file=proof),
            idempotent=True,
        )
        if not verified.valid:
            raise UnknownAsset("the asset's proof does not verify")
        asset = verified.decoded_proof.asset
        genesis = asset.asset_genesis
        key = universe_pb2.UniverseKey(
            id=universe_pb2.ID(
                asset_id=genesis.asset_id, proof_type=universe_pb2.PROOF_TYPE_ISSUANCE
            ),
            leaf_key=universe_pb2.AssetKey(
                op_str=genesis.genesis_point, script_key_bytes=asset.script_key
            ),
        )
        await self.caller.call(
            "InsertProof",
            self._rpc().universe.InsertProof,
            universe_pb2.AssetProof(key=key, asset_leaf={"asset": asset, "proof": proof}),
            idempotent=True,
        )
        asset_id = genesis.asset_id.hex()
        self._names[asset_id] = genesis.name
        return AssetMeta(
            asset_id=asset_id,
            name=genesis.name,
            decimals=asset.decimal_display.decimal_display,
            meta=bytes(verified.decoded_proof.meta_reveal.data),
        )

    def _need_channels(self) -> None:
        if "asset_channels" not in self.features:
            raise UnsupportedOperation(
                "asset invoices and payments need litd in integrated mode (asset_channels)"
            )


def _payment_result(item: Any) -> Any | None:
    return item.payment_result if item.WhichOneof("result") == "payment_result" else None


def _asset_id(asset_id: str) -> bytes:
    try:
        raw = bytes.fromhex(asset_id)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UnknownAsset(f"not an asset id (64 hex): {asset_id!r}")
    return raw
