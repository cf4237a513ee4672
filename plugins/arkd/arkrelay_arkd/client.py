"""ArkdBackend: the ArkBackend of arkrelay_core, over arkd's gRPC API (or the simulator's).

The backend owns everything transaction-shaped: it derives owners' default VTXO scripts,
builds ark and checkpoint PSBTs, computes the sighashes a wallet signs, places and checks
signatures, and drives SubmitTx / FinalizeTx. See PINS.md §1.5 for the flow.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import msgspec
import trio

from arkrelay_core.errors import BackendError, BackendUnavailable, UnsupportedOperation
from arkrelay_core.grpcutil import Backoff, Caller, open_channel, pump
from arkrelay_core.interfaces import (
    ArkEvent,
    ArkInfo,
    FinalizedTx,
    InputSignature,
    OffchainTx,
    OwnershipProof,
    PluginContext,
    SubmittedTx,
    TxOutputSpec,
    Vtxo,
)

from . import offchain, ownership, psbtfacts
from ._proto.ark.v1 import (
    indexer_pb2,
    indexer_pb2_grpc,
    service_pb2,
    service_pb2_grpc,
    types_pb2,
)
from .convert import (
    ServerParams,
    ark_event,
    duplicate_submission,
    owner_key,
    server_params,
    vtxo_from_proto,
)
from .errors import map_rpc_error
from .inventory import BackendReplenisher, Inventory, Signer
from .settings import ArkdSettings
from .sim import ArkdSimulator, Ledger
from .tapscript import default_vtxo_tree

#: The in-process simulator's durable state, in the gateway's data directory.
SIM_STATE_FILE = "sim-arkd.json"

__all__ = ["ArkdBackend"]

log = logging.getLogger(__name__)

_PAGE = 500
_MEMORY = 4096  # remembered scripts / submissions, oldest forgotten first


class ArkdBackend:
    """An arkd client. With no ``target`` configured it runs (and owns) a simulator."""

    def __init__(
        self,
        settings: ArkdSettings,
        context: PluginContext | None = None,
        *,
        simulator: ArkdSimulator | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        if simulator is None and settings.target is None:
            sim = settings.simulator
            simulator = ArkdSimulator(
                Ledger(
                    network=context.network if context else "regtest",
                    unilateral_exit_delay=sim.unilateral_exit_delay,
                    boarding_exit_delay=sim.boarding_exit_delay,
                    checkpoint_exit_delay=sim.checkpoint_exit_delay,
                    vtxo_lifetime=sim.vtxo_lifetime.seconds,
                    vtxo_min_amount=sim.vtxo_min_amount,
                    vtxo_max_amount=sim.vtxo_max_amount,
                    max_op_return_outputs=sim.max_op_return_outputs,
                    intent_fees=sim.intent_fees,
                    state_file=context.data_dir / SIM_STATE_FILE if context else None,
                ),
                host=sim.listen.host,
            )
            self._owns_simulator = True
        else:
            self._owns_simulator = False
        self.simulator = simulator
        self.features = frozenset({"board"}) if simulator is not None else frozenset()
        if settings.macaroon is not None and not settings.tls:
            log.warning("a macaroon is configured for plaintext arkd; sending it anyway")
        self.caller = Caller(
            "arkd",
            settings,
            map_error=map_rpc_error,
            unavailable=BackendUnavailable,
            metadata=(("macaroon", settings.macaroon.reveal()),) if settings.macaroon else (),
        )
        self._channel: grpc.Channel | None = None
        self._ark: service_pb2_grpc.ArkServiceStub | None = None
        self._indexer: indexer_pb2_grpc.IndexerServiceStub | None = None
        self._params: ServerParams | None = None
        self._owners: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._submitted: collections.OrderedDict[str, SubmittedTx] = collections.OrderedDict()
        self.events_received = 0
        self.stream_reconnects = 0
        #: The gateway's own VTXOs, owned by its current service key (when built by the
        #: plugin host); ``serve`` runs its level monitor.
        self.inventory: Inventory | None = None
        if context is not None and context.listening_pubkeys():
            self.inventory = Inventory(
                self,
                context.listening_pubkeys()[0],
                settings.inventory,
                replenisher=BackendReplenisher(self) if simulator is not None else None,
            )

    # ------------------------------------------------------------------ lifecycle

    @property
    def target(self) -> str:
        if self.settings.target is not None:
            return str(self.settings.target)
        assert self.simulator is not None
        return self.simulator.target

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect (starting the owned simulator first) and stay connected until cancelled."""
        owned = self.simulator if self._owns_simulator else None
        if owned is not None and not owned.running:
            owned.start(self.settings.simulator.listen.port)
        settings = self.settings
        self._channel = open_channel(
            self.target,
            tls=settings.tls,
            root_certificate=settings.tls_cert.read_bytes() if settings.tls_cert else None,
            server_name=settings.tls_server_name,
        )
        self._ark = service_pb2_grpc.ArkServiceStub(self._channel)
        self._indexer = indexer_pb2_grpc.IndexerServiceStub(self._channel)
        log.info("arkd backend using %s", self.target)
        try:
            async with trio.open_nursery() as nursery:
                rest_port = self.settings.simulator.rest_port
                if owned is not None and owned.rest_port is None and rest_port >= 0:
                    await nursery.start(owned.serve_rest, rest_port)
                if self.inventory is not None:
                    nursery.start_soon(self.inventory.monitor)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._channel.close()
            if self._owns_simulator and self.simulator is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self.simulator.stop)

    async def send_from_inventory(
        self, outputs: Sequence[TxOutputSpec], sign: Signer
    ) -> FinalizedTx:
        """Pay ``outputs`` from the gateway's own VTXOs; ``sign`` holds the service key."""
        if self.inventory is None:
            raise UnsupportedOperation("this backend was built without a service key")
        return await self.inventory.send(outputs, sign)

    def statistics(self) -> Mapping[str, Any]:
        return {
            "inventory": self.inventory.statistics() if self.inventory is not None else None,
            "target": self.target if (self.settings.target or self.simulator) else None,
            "simulated": self.simulator is not None,
            **self.caller.statistics(),
            "events_received": self.events_received,
            "stream_reconnects": self.stream_reconnects,
        }

    def _stubs(self) -> tuple[service_pb2_grpc.ArkServiceStub, indexer_pb2_grpc.IndexerServiceStub]:
        if self._ark is None or self._indexer is None:
            raise RuntimeError("ArkdBackend.serve() has not started")
        return self._ark, self._indexer

    # ------------------------------------------------------------------ info and scripts

    async def get_info(self) -> ArkInfo:
        info = (await self._server_params(refresh=True)).info
        return msgspec.structs.replace(info, server_url=self.server_url)

    @property
    def server_url(self) -> str:
        """arkd's REST URL for wallets: the configured ``public_url``, else the
        simulator's own REST interface when it serves one; "" when unknown."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        if self.simulator is not None and self.simulator.rest_port is not None:
            return self.simulator.rest_url
        return ""

    async def _server_params(self, *, refresh: bool = False) -> ServerParams:
        if self._params is not None and not refresh:
            return self._params
        ark, _ = self._stubs()
        resp = await self.caller.call(
            "GetInfo", ark.GetInfo, service_pb2.GetInfoRequest(), idempotent=True
        )
        self._params = server_params(resp)
        if self.settings.send_digest and resp.digest:
            self.caller.set_header("x-digest", resp.digest)
        return self._params

    def _scripts(self, params: ServerParams, owner: str) -> list[str]:
        key = owner_key(owner)
        scripts = [
            default_vtxo_tree(key, signer, params.exit_delay).pk_script.hex()
            for signer in params.signers
        ]
        for script in scripts:
            self._remember(self._owners, script, owner)
        return scripts

    # ------------------------------------------------------------------ VTXOs

    async def list_vtxos(self, owner: str, *, spendable_only: bool = True) -> list[Vtxo]:
        params = await self._server_params()
        request = indexer_pb2.GetVtxosRequest(
            scripts=self._scripts(params, owner), spendable_only=spendable_only
        )
        return [vtxo_from_proto(v, owner) for v in await self._get_vtxos(request)]

    async def get_vtxos(self, vtxo_ids: Sequence[str]) -> list[Vtxo]:
        if not vtxo_ids:
            return []
        found = await self._get_vtxos(indexer_pb2.GetVtxosRequest(outpoints=list(vtxo_ids)))
        return [vtxo_from_proto(v, self._owners.get(v.script, "")) for v in found]

    async def _get_vtxos(self, request: indexer_pb2.GetVtxosRequest) -> list[Any]:
        _, indexer = self._stubs()
        out: list[Any] = []
        # arkd numbers pages from 1 (an index of 0 reads as 1) and answers next as
        # min(current + 1, total) (internal/core/application/indexer.go paginate).
        index = 1
        while True:
            request.page.CopyFrom(indexer_pb2.IndexerPageRequest(size=_PAGE, index=index))
            resp = await self.caller.call("GetVtxos", indexer.GetVtxos, request, idempotent=True)
            out.extend(resp.vtxos)
            if not resp.HasField("page") or not resp.vtxos or resp.page.current >= resp.page.total:
                return out
            index = resp.page.current + 1

    async def board(self, owner: str, amount: int) -> Vtxo:
        if self.simulator is None:
            raise UnsupportedOperation(
                "arkd cannot fund a key on request; board with arkd's own client tools"
            )
        sim_vtxo = await trio.to_thread.run_sync(self.simulator.board, owner, amount)
        self._remember(self._owners, sim_vtxo.script, owner)
        return Vtxo(
            vtxo_id=sim_vtxo.outpoint,
            owner=owner,
            amount=sim_vtxo.amount,
            script=sim_vtxo.script,
            expires_at=sim_vtxo.expires_at,
            created_at=sim_vtxo.created_at,
        )

    # ------------------------------------------------------------------ the offchain flow

    async def build_offchain_tx(
        self, inputs: Sequence[Vtxo], outputs: Sequence[TxOutputSpec]
    ) -> OffchainTx:
        params = await self._server_params()
        return offchain.build(
            params,
            inputs,
            outputs,
            lambda script, owner: self._remember(self._owners, script, owner),
        )

    def add_signatures(self, psbt: str, signatures: Sequence[InputSignature]) -> str:
        return offchain.add_signatures(psbt, signatures)

    async def submit_tx(self, signed_ark_tx: str, checkpoint_txs: Sequence[str]) -> SubmittedTx:
        params = await self._server_params()
        ark_txid = offchain.decode_txid(signed_ark_tx)
        if ark_txid in self._submitted:
            return self._submitted[ark_txid]
        ark, _ = self._stubs()
        request = service_pb2.SubmitTxRequest(
            signed_ark_tx=signed_ark_tx, checkpoint_txs=list(checkpoint_txs)
        )
        try:
            resp = await self.caller.call("SubmitTx", ark.SubmitTx, request, idempotent=False)
        except BackendError as exc:
            raise duplicate_submission(exc, ark_txid) from exc.__cause__
        submitted = offchain.check_submission(params, resp)
        self._remember(self._submitted, ark_txid, submitted)
        return submitted

    async def finalize_tx(self, ark_txid: str, final_checkpoint_txs: Sequence[str]) -> FinalizedTx:
        ark, _ = self._stubs()
        spent = offchain.spent_outpoints(final_checkpoint_txs)
        request = service_pb2.FinalizeTxRequest(
            ark_txid=ark_txid, final_checkpoint_txs=list(final_checkpoint_txs)
        )
        await self.caller.call("FinalizeTx", ark.FinalizeTx, request, idempotent=False)
        created: tuple[Vtxo, ...] = ()
        submitted = self._submitted.get(ark_txid)
        if submitted is not None:
            outputs = psbtfacts.facts(submitted.final_ark_tx).vtxo_outputs
            ids = [f"{ark_txid}:{index}" for index in outputs]
            created = tuple(await self.get_vtxos(ids))
        else:
            log.warning("finalized %s without its SubmitTx answer; created VTXOs unknown", ark_txid)
        return FinalizedTx(ark_txid=ark_txid, spent=spent, created=created)

    # ------------------------------------------------------------------ recovery

    async def build_ownership_proof(
        self, vtxos: Sequence[Vtxo], *, expire_at: int
    ) -> OwnershipProof:
        return ownership.build(await self._server_params(), vtxos, expire_at)

    def add_proof_signatures(
        self, proof: OwnershipProof, signatures: Sequence[InputSignature]
    ) -> str:
        return ownership.add_proof_signatures(proof, signatures)

    async def get_pending_txs(self, proof: str, message: str) -> list[SubmittedTx]:
        params = await self._server_params()
        ark, _ = self._stubs()
        request = service_pb2.GetPendingTxRequest(
            intent=types_pb2.Intent(proof=proof, message=message)
        )
        resp = await self.caller.call("GetPendingTx", ark.GetPendingTx, request, idempotent=True)
        found = []
        for pending in resp.pending_txs:
            submitted = offchain.check_submission(params, pending)
            # finalize_tx then knows the VTXOs it creates, as after our own SubmitTx.
            self._remember(self._submitted, submitted.ark_txid, submitted)
            found.append(submitted)
        return found

    # ------------------------------------------------------------------ events

    async def stream_events(
        self,
        send: trio.MemorySendChannel[ArkEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        ark, _ = self._stubs()
        backoff = Backoff(self.settings.backoff_initial.seconds, self.settings.backoff_max.seconds)
        started = False
        while True:
            call = ark.GetTransactionsStream(
                service_pb2.GetTransactionsStreamRequest(), metadata=self.caller.metadata
            )
            try:
                # Announce readiness once arkd has taken the stream (it answers with
                # headers), or after call_timeout: arkd may hold headers until its first
                # message. A thread left waiting ends with the call, in `finally` below.
                with trio.move_on_after(self.settings.call_timeout.seconds):
                    await trio.to_thread.run_sync(call.initial_metadata, abandon_on_cancel=True)
                if not started:
                    task_status.started()
                    started = True
                backoff.reset()
                await pump(call, lambda resp: self._forward(resp, send))
                log.info("arkd transaction stream ended; reconnecting")
            except grpc.RpcError as exc:
                log.warning(
                    "arkd transaction stream failed: %s",
                    map_rpc_error(exc, "GetTransactionsStream"),
                )
            finally:
                call.cancel()
            self.stream_reconnects += 1
            await backoff.sleep()

    async def _forward(self, resp: Any, send: trio.MemorySendChannel[ArkEvent]) -> None:
        event = ark_event(resp, self._owners)
        if event is None:
            return
        self.events_received += 1
        await send.send(event)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _remember(memory: collections.OrderedDict[str, Any], key: str, value: Any) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > _MEMORY:
            memory.popitem(last=False)
