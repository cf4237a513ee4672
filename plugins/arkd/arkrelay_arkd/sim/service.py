"""The simulator's gRPC servicers: ArkService and IndexerService over the pinned protos."""

from __future__ import annotations

import contextlib
import logging
import queue
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

from .._proto.ark.v1 import (
    service_pb2,
    service_pb2_grpc,
    types_pb2,
)
from . import intentfee, pendingtx
from .batch import BatchEngine
from .batchrpc import BatchRpcs
from .errors import ArkdError
from .ledger import Ledger, SimTxEvent, SimVtxo

__all__ = ["ArkServicer"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: arkd sends heartbeats on idle streams; so does the simulator, so clients can tell an idle
#: stream from a dead one.
HEARTBEAT_SECONDS = 10.0


def _abort(context: grpc.ServicerContext, error: ArkdError) -> NoReturn:
    details = any_pb2.Any()
    details.Pack(
        types_pb2.ErrorDetails(
            code=error.kind.number,
            name=error.kind.name,
            message=error.message,
            metadata=error.metadata,
        )
    )
    status = status_pb2.Status(
        code=error.kind.status.value[0], message=error.message, details=[details]
    )
    context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returned")  # it raises; this satisfies NoReturn


def _guard(context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ArkdError as error:
        log.info("sim: %s: %s", error.kind.name, error.message)
        _abort(context, error)


def _vtxo(v: SimVtxo) -> types_pb2.Vtxo:
    return types_pb2.Vtxo(
        outpoint=types_pb2.Outpoint(txid=v.txid, vout=v.vout),
        amount=v.amount,
        script=v.script,
        created_at=v.created_at,
        expires_at=v.expires_at,
        commitment_txids=v.commitment_txids,
        is_preconfirmed=v.preconfirmed,
        is_swept=v.swept,
        is_spent=v.spent,
        spent_by=v.spent_by,
        settled_by=v.settled_by,
        ark_txid=v.ark_txid,
    )


def _notification(event: SimTxEvent) -> types_pb2.TxNotification:
    return types_pb2.TxNotification(
        txid=event.txid,
        tx=event.tx,
        spent_vtxos=[_vtxo(v) for v in event.spent],
        spendable_vtxos=[_vtxo(v) for v in event.spendable],
        checkpoint_txs={
            outpoint: types_pb2.TxData(txid=txid, tx=tx) for outpoint, txid, tx in event.checkpoints
        },
    )


class ArkServicer(BatchRpcs, service_pb2_grpc.ArkServiceServicer):
    def __init__(self, ledger: Ledger, batches: BatchEngine) -> None:
        self.ledger = ledger
        self.batches = batches

    def _run(self, context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
        return _guard(context, fn)

    def GetInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        info = self.ledger.info()
        info["session_duration"] = int(self.batches.config.session_duration)
        info["forfeit_address"] = self.batches.forfeit_address
        return service_pb2.GetInfoResponse(**info)

    def SubmitTx(self, request: Any, context: grpc.ServicerContext) -> Any:
        txid, final, checkpoints = _guard(
            context, lambda: self.ledger.submit(request.signed_ark_tx, list(request.checkpoint_txs))
        )
        return service_pb2.SubmitTxResponse(
            ark_txid=txid, final_ark_tx=final, signed_checkpoint_txs=checkpoints
        )

    def FinalizeTx(self, request: Any, context: grpc.ServicerContext) -> Any:
        _guard(
            context,
            lambda: self.ledger.finalize(request.ark_txid, list(request.final_checkpoint_txs)),
        )
        return service_pb2.FinalizeTxResponse()

    def EstimateIntentFee(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            fee = _guard(context, lambda: intentfee.estimate_intent_fee(self.ledger, request))
        except pendingtx.BadRequest as exc:
            log.info("sim: EstimateIntentFee refused: %s", exc)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return service_pb2.EstimateIntentFeeResponse(fee=fee)

    def GetPendingTx(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            answers = _guard(context, lambda: pendingtx.get_pending_txs(self.ledger, request))
        except pendingtx.BadRequest as exc:
            log.info("sim: GetPendingTx refused: %s", exc)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return service_pb2.GetPendingTxResponse(
            pending_txs=[
                types_pb2.PendingTx(
                    ark_txid=a.ark_txid,
                    final_ark_tx=a.final_ark_tx,
                    signed_checkpoint_txs=a.signed_checkpoint_txs,
                )
                for a in answers
            ]
        )

    def GetTransactionsStream(
        self, request: Any, context: grpc.ServicerContext
    ) -> Iterator[service_pb2.GetTransactionsStreamResponse]:
        events = self.ledger.subscribe()
        # Wake the loop below as soon as the client goes away or the server stops.
        context.add_callback(lambda: _wake(events))
        context.send_initial_metadata(())
        try:
            while context.is_active():
                try:
                    event = events.get(timeout=HEARTBEAT_SECONDS)
                except queue.Empty:
                    yield service_pb2.GetTransactionsStreamResponse(heartbeat=types_pb2.Heartbeat())
                    continue
                if event is None:
                    return
                note = _notification(event)
                if event.kind == "ark_tx":
                    yield service_pb2.GetTransactionsStreamResponse(ark_tx=note)
                elif event.kind == "commitment_tx":
                    yield service_pb2.GetTransactionsStreamResponse(commitment_tx=note)
                else:
                    yield service_pb2.GetTransactionsStreamResponse(sweep_tx=note)
        finally:
            self.ledger.unsubscribe(events)


def _wake(events: queue.Queue[SimTxEvent | None]) -> None:
    # A full queue wakes the reader anyway; it then sees the call is no longer active.
    with contextlib.suppress(queue.Full):
        events.put_nowait(None)
