"""ArkdBackend: the ArkBackend of arkrelay_core, over arkd's gRPC API (or the simulator's).

The backend owns everything transaction-shaped: it derives owners' default VTXO scripts,
builds ark and checkpoint PSBTs, computes the sighashes a wallet signs, places and checks
signatures, and drives SubmitTx / FinalizeTx. See PINS.md §1.5 for the flow.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import trio

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import (
    ArkRelayError,
    BackendError,
    BackendUnavailable,
    InsufficientBalance,
    ProtocolViolation,
    UnsupportedOperation,
    VtxoAlreadySpent,
    VtxoNotOwned,
)
from arkrelay_core.grpcutil import Backoff, Caller, open_channel, pump
from arkrelay_core.interfaces import (
    ArkEvent,
    ArkInfo,
    FinalizedTx,
    InputSignature,
    InputToSign,
    OffchainTx,
    PluginContext,
    SubmittedTx,
    TxOutputSpec,
    Vtxo,
)
from arkrelay_core.nostr import bip340

from . import arktx
from ._proto.ark.v1 import indexer_pb2, indexer_pb2_grpc, service_pb2, service_pb2_grpc
from .errors import error_info, map_rpc_error
from .inventory import BackendReplenisher, Inventory, Signer
from .settings import ArkdSettings
from .sim import ArkdSimulator, Ledger
from .tapscript import default_vtxo_tree

__all__ = ["ArkdBackend"]

log = logging.getLogger(__name__)

_PAGE = 500
_MEMORY = 4096  # remembered scripts / submissions, oldest forgotten first


@dataclasses.dataclass(frozen=True)
class _ServerParams:
    info: ArkInfo
    signer: bytes
    signers: tuple[bytes, ...]  # current first, then deprecated
    checkpoint_tapscript: bytes
    exit_delay: int


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
                    vtxo_lifetime=sim.vtxo_lifetime.seconds,
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
        self._params: _ServerParams | None = None
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
        if self._owns_simulator and self.simulator is not None and not self.simulator.running:
            self.simulator.start(self.settings.simulator.listen.port)
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
        return (await self._server_params(refresh=True)).info

    async def _server_params(self, *, refresh: bool = False) -> _ServerParams:
        if self._params is not None and not refresh:
            return self._params
        ark, _ = self._stubs()
        resp = await self.caller.call(
            "GetInfo", ark.GetInfo, service_pb2.GetInfoRequest(), idempotent=True
        )
        signer = _xonly(resp.signer_pubkey)
        info = ArkInfo(
            version=resp.version,
            network=resp.network,
            signer_pubkey=signer.hex(),
            forfeit_pubkey=_xonly(resp.forfeit_pubkey).hex(),
            unilateral_exit_delay=resp.unilateral_exit_delay,
            dust=resp.dust,
            vtxo_min_amount=resp.vtxo_min_amount,
            vtxo_max_amount=resp.vtxo_max_amount,
            digest=resp.digest,
        )
        self._params = _ServerParams(
            info=info,
            signer=signer,
            signers=(signer, *(_xonly(d.pubkey) for d in resp.deprecated_signers)),
            checkpoint_tapscript=bytes.fromhex(resp.checkpoint_tapscript),
            exit_delay=resp.unilateral_exit_delay,
        )
        if self.settings.send_digest and resp.digest:
            self.caller.set_header("x-digest", resp.digest)
        return self._params

    def _scripts(self, params: _ServerParams, owner: str) -> list[str]:
        key = _owner_key(owner)
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
        return [_vtxo(v, owner) for v in await self._get_vtxos(request)]

    async def get_vtxos(self, vtxo_ids: Sequence[str]) -> list[Vtxo]:
        if not vtxo_ids:
            return []
        found = await self._get_vtxos(indexer_pb2.GetVtxosRequest(outpoints=list(vtxo_ids)))
        return [_vtxo(v, self._owners.get(v.script, "")) for v in found]

    async def _get_vtxos(self, request: indexer_pb2.GetVtxosRequest) -> list[Any]:
        _, indexer = self._stubs()
        out: list[Any] = []
        index = 0
        while True:
            request.page.CopyFrom(indexer_pb2.IndexerPageRequest(size=_PAGE, index=index))
            resp = await self.caller.call("GetVtxos", indexer.GetVtxos, request, idempotent=True)
            out.extend(resp.vtxos)
            if (
                not resp.HasField("page")
                or resp.page.next <= index
                or resp.page.next >= resp.page.total
            ):
                return out
            index = resp.page.next

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
        total_in = sum(v.amount for v in inputs)
        total_out = sum(o.amount for o in outputs)
        if total_out > total_in:
            raise InsufficientBalance(f"outputs need {total_out} sats, inputs hold {total_in}")
        if total_out < total_in:
            raise ValueError(f"outputs ({total_out}) must spend inputs ({total_in}) exactly")
        spends = [self._spend(params, v) for v in inputs]
        out_scripts: list[tuple[bytes, int]] = []
        for o in outputs:
            if o.amount < max(params.info.dust, params.info.vtxo_min_amount):
                raise ProtocolViolation(
                    f"output of {o.amount} sats is below the server's minimum",
                    code=ErrorCode.MALFORMED_CONTENT,
                )
            tree = default_vtxo_tree(_owner_key(o.owner), params.signer, params.exit_delay)
            self._remember(self._owners, tree.pk_script.hex(), o.owner)
            out_scripts.append((tree.pk_script, o.amount))
        try:
            txs = arktx.build_offchain_txs(spends, out_scripts, params.checkpoint_tapscript)
        except arktx.ArkTxError as exc:
            raise ProtocolViolation(str(exc), code=ErrorCode.MALFORMED_CONTENT) from exc
        ark_b64 = arktx.encode_psbt(txs.ark_tx)
        to_sign = tuple(
            InputToSign(
                tx_role="ark_tx",
                psbt=ark_b64,
                input_index=i,
                sighash=arktx.tapscript_sighash(txs.ark_tx, i).hex(),
                vtxo_id=v.vtxo_id,
                owner=v.owner,
            )
            for i, v in enumerate(inputs)
        )
        return OffchainTx(
            ark_txid=arktx.txid(txs.ark_tx),
            ark_tx=ark_b64,
            checkpoint_txs=tuple(arktx.encode_psbt(cp) for cp in txs.checkpoints),
            to_sign=to_sign,
        )

    def _spend(self, params: _ServerParams, vtxo: Vtxo) -> arktx.VtxoSpend:
        key = _owner_key(vtxo.owner)
        txid, _, vout = vtxo.vtxo_id.partition(":")
        for signer in params.signers:
            tree = default_vtxo_tree(key, signer, params.exit_delay)
            if tree.pk_script.hex() == vtxo.script.lower():
                return arktx.VtxoSpend(txid, int(vout), vtxo.amount, tree, tree.leaves[1])
        raise VtxoNotOwned(f"VTXO {vtxo.vtxo_id} is not locked to {vtxo.owner}'s default script")

    def add_signatures(self, psbt: str, signatures: Sequence[InputSignature]) -> str:
        try:
            packet = arktx.decode_psbt(psbt)
        except arktx.ArkTxError as exc:
            raise ProtocolViolation(str(exc), code=ErrorCode.MALFORMED_CONTENT) from exc
        for sig in signatures:
            if not 0 <= sig.input_index < len(packet.inputs):
                raise ProtocolViolation(
                    f"no input {sig.input_index}", code=ErrorCode.MALFORMED_CONTENT
                )
            try:
                pubkey = bytes.fromhex(sig.pubkey)
                signature = bytes.fromhex(sig.signature)
                keys = arktx.signature_keys(packet, sig.input_index)
                digest = arktx.tapscript_sighash(packet, sig.input_index)
            except (ValueError, arktx.ArkTxError) as exc:
                raise ProtocolViolation(str(exc), code=ErrorCode.INVALID_SIGNING_RESPONSE) from exc
            if pubkey not in keys:
                raise VtxoNotOwned(f"{sig.pubkey} cannot sign input {sig.input_index}")
            if len(signature) != 64 or not bip340.schnorr_verify(pubkey, digest, signature):
                raise ProtocolViolation(
                    f"invalid signature for input {sig.input_index}",
                    code=ErrorCode.INVALID_SIGNING_RESPONSE,
                )
            arktx.add_signature(packet, sig.input_index, pubkey, signature)
        return arktx.encode_psbt(packet)

    async def submit_tx(self, signed_ark_tx: str, checkpoint_txs: Sequence[str]) -> SubmittedTx:
        params = await self._server_params()
        try:
            ark_txid = arktx.txid(arktx.decode_psbt(signed_ark_tx))
        except arktx.ArkTxError as exc:
            raise ProtocolViolation(str(exc), code=ErrorCode.MALFORMED_CONTENT) from exc
        if ark_txid in self._submitted:
            return self._submitted[ark_txid]
        ark, _ = self._stubs()
        request = service_pb2.SubmitTxRequest(
            signed_ark_tx=signed_ark_tx, checkpoint_txs=list(checkpoint_txs)
        )
        try:
            resp = await self.caller.call("SubmitTx", ark.SubmitTx, request, idempotent=False)
        except BackendError as exc:
            raise _duplicate_submission(exc, ark_txid) from exc.__cause__
        submitted = self._check_submission(params, resp)
        self._remember(self._submitted, ark_txid, submitted)
        return submitted

    def _check_submission(self, params: _ServerParams, resp: Any) -> SubmittedTx:
        """Check arkd's co-signatures (PINS.md §1.5 step 4) and list what is left to sign."""
        signers = set(params.signers)
        final = arktx.decode_psbt(resp.final_ark_tx)
        order = {inp.txid.hex(): i for i, inp in enumerate(final.inputs)}
        checkpoints = sorted(
            ((b64, arktx.decode_psbt(b64)) for b64 in resp.signed_checkpoint_txs),
            key=lambda item: order.get(arktx.txid(item[1]), len(order)),
        )
        signed = [(final, i) for i in range(len(final.inputs))]
        signed += [(packet, 0) for _, packet in checkpoints]
        for packet, i in signed:
            verdicts = arktx.verify_input_signatures(packet, i)
            if not any(ok for key, ok in verdicts.items() if key in signers):
                raise BackendError(
                    f"arkd returned tx {arktx.txid(packet)} without a valid server signature",
                    code=ErrorCode.INTERNAL,
                )
        to_sign = []
        for b64, packet in checkpoints:
            owner = next(k for k in arktx.signature_keys(packet, 0) if k not in signers)
            to_sign.append(
                InputToSign(
                    tx_role="checkpoint",
                    psbt=b64,
                    input_index=0,
                    sighash=arktx.tapscript_sighash(packet, 0).hex(),
                    vtxo_id=arktx.input_outpoint(packet, 0),
                    owner=owner.hex(),
                )
            )
        return SubmittedTx(
            ark_txid=resp.ark_txid,
            final_ark_tx=resp.final_ark_tx,
            signed_checkpoint_txs=tuple(t.psbt for t in to_sign),
            to_sign=tuple(to_sign),
        )

    async def finalize_tx(self, ark_txid: str, final_checkpoint_txs: Sequence[str]) -> FinalizedTx:
        ark, _ = self._stubs()
        try:
            spent = tuple(
                arktx.input_outpoint(arktx.decode_psbt(cp), 0) for cp in final_checkpoint_txs
            )
        except arktx.ArkTxError as exc:
            raise ProtocolViolation(str(exc), code=ErrorCode.MALFORMED_CONTENT) from exc
        request = service_pb2.FinalizeTxRequest(
            ark_txid=ark_txid, final_checkpoint_txs=list(final_checkpoint_txs)
        )
        await self.caller.call("FinalizeTx", ark.FinalizeTx, request, idempotent=False)
        created: tuple[Vtxo, ...] = ()
        submitted = self._submitted.get(ark_txid)
        if submitted is not None:
            final = arktx.decode_psbt(submitted.final_ark_tx)
            ids = [f"{ark_txid}:{i}" for i, _, _ in arktx.outputs_of(final)]
            created = tuple(await self.get_vtxos(ids))
        else:
            log.warning("finalized %s without its SubmitTx answer; created VTXOs unknown", ark_txid)
        return FinalizedTx(ark_txid=ark_txid, spent=spent, created=created)

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
        kind = resp.WhichOneof("data")
        if kind in (None, "heartbeat"):
            return
        note = getattr(resp, kind)
        self.events_received += 1
        await send.send(
            ArkEvent(
                kind=kind,
                txid=note.txid,
                spent=tuple(f"{v.outpoint.txid}:{v.outpoint.vout}" for v in note.spent_vtxos),
                created=tuple(
                    _vtxo(v, self._owners.get(v.script, "")) for v in note.spendable_vtxos
                ),
            )
        )

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _remember(memory: collections.OrderedDict[str, Any], key: str, value: Any) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > _MEMORY:
            memory.popitem(last=False)


def _duplicate_submission(exc: BackendError, ark_txid: str) -> ArkRelayError:
    cause = exc.__cause__
    if isinstance(cause, grpc.RpcError):
        info = error_info(cause)
        if info.name == "INVALID_ARK_PSBT" and "duplicated offchain tx" in info.message:
            return VtxoAlreadySpent(
                f"ark tx {ark_txid} was already submitted (by another process or before a "
                "restart); resume it with GetPendingTx"
            )
    return exc


def _xonly(pubkey_hex: str) -> bytes:
    raw = bytes.fromhex(pubkey_hex)
    return raw[1:] if len(raw) == 33 else raw


def _owner_key(owner: str) -> bytes:
    try:
        key = bytes.fromhex(owner)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ProtocolViolation(
            f"not an x-only public key: {owner!r}", code=ErrorCode.MALFORMED_CONTENT
        )
    return key


def _vtxo(v: Any, owner: str) -> Vtxo:
    now = time.time()
    if v.is_swept:
        status = "swept"
    elif v.is_spent:
        status = "spent"
    elif v.expires_at and v.expires_at <= now:
        status = "expired"
    else:
        status = "spendable"
    return Vtxo(
        vtxo_id=f"{v.outpoint.txid}:{v.outpoint.vout}",
        owner=owner,
        amount=v.amount,
        script=v.script,
        expires_at=v.expires_at,
        status=status,
        created_at=v.created_at,
        ark_txid=v.ark_txid or None,
        spent_by=v.spent_by or None,
        is_preconfirmed=v.is_preconfirmed,
    )
