"""ArkService's batch RPCs, as servicer methods over the BatchEngine (arkd's
grpc/handlers/arkservice.go: request parsing and its InvalidArgument refusals here, the
protocol in ``sim.batch``)."""

from __future__ import annotations

import contextlib
import logging
import queue
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from .._proto.ark.v1 import service_pb2, types_pb2
from .batch import BatchEngine

__all__ = ["BatchRpcs"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: arkd sends a heartbeat on an idle event stream (handlers' ``heartbeat``).
HEARTBEAT_SECONDS = 10.0


def _hex(value: str, what: str, size: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError(f"invalid {what}: {exc}") from exc
    if size is not None and len(raw) != size:
        raise ValueError(f"invalid {what}: expected {size} bytes, got {len(raw)}")
    return raw


class BatchRpcs:
    """Mixed into the ArkService servicer; ``self.batches`` is the engine and ``self._run``
    turns an ArkdError into arkd's gRPC status."""

    batches: BatchEngine
    _run: Callable[..., Any]

    def _invalid(self, context: grpc.ServicerContext, message: str) -> None:
        log.info("sim: refused: %s", message)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

    def _intent(self, request: Any, context: grpc.ServicerContext) -> tuple[str, str]:
        if not request.HasField("intent"):
            self._invalid(context, "missing intent")
        proof, message = request.intent.proof, request.intent.message
        if not proof:
            self._invalid(context, "missing intent proof")
        if not message:
            self._invalid(context, "missing message")
        return proof, message

    def RegisterIntent(self, request: Any, context: grpc.ServicerContext) -> Any:
        proof, message = self._intent(request, context)
        intent_id = self._run(context, lambda: self.batches.register(proof, message))
        return service_pb2.RegisterIntentResponse(intent_id=intent_id)

    def DeleteIntent(self, request: Any, context: grpc.ServicerContext) -> Any:
        proof, message = self._intent(request, context)
        self._run(context, lambda: self.batches.delete(proof, message))
        return service_pb2.DeleteIntentResponse()

    def EstimateIntentFee(self, request: Any, context: grpc.ServicerContext) -> Any:
        proof, message = self._intent(request, context)
        fee = self._run(context, lambda: self.batches.estimate_fee(proof, message))
        return service_pb2.EstimateIntentFeeResponse(fee=fee)

    def GetIntent(self, request: Any, context: grpc.ServicerContext) -> Any:
        which = request.WhichOneof("filter")
        if which == "txid":
            found = self._run(context, lambda: self.batches.find(txid=request.txid))
        elif which == "intent":
            proof, message = request.intent.proof, request.intent.message
            found = self._run(context, lambda: self.batches.find(proof=proof, message=message))
        else:
            self._invalid(context, "missing filter")
        intents = [types_pb2.Intent(proof=i.proof, message=i.message) for i in found]
        first = intents[0] if intents else None
        return service_pb2.GetIntentResponse(intent=first, intents=intents)

    def ConfirmRegistration(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.intent_id:
            self._invalid(context, "missing intent id")
        self._run(context, lambda: self.batches.confirm(request.intent_id))
        return service_pb2.ConfirmRegistrationResponse()

    def SubmitTreeNonces(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.batch_id:
            self._invalid(context, "missing batch id")
        try:
            pubkey = _hex(request.pubkey, "cosigner pubkey", 33)
            nonces = {t: _hex(n, "nonce", 66) for t, n in request.tree_nonces.items()}
        except ValueError as exc:
            self._invalid(context, str(exc))
        if not nonces:
            self._invalid(context, "missing tree nonces")
        self._run(context, lambda: self.batches.submit_nonces(request.batch_id, pubkey, nonces))
        return service_pb2.SubmitTreeNoncesResponse()

    def SubmitTreeSignatures(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.batch_id:
            self._invalid(context, "missing batch id")
        try:
            pubkey = _hex(request.pubkey, "cosigner pubkey", 33)
            sigs = {t: _hex(s, "signature", 32) for t, s in request.tree_signatures.items()}
        except ValueError as exc:
            self._invalid(context, str(exc))
        if not sigs:
            self._invalid(context, "missing tree signatures")
        self._run(context, lambda: self.batches.submit_signatures(request.batch_id, pubkey, sigs))
        return service_pb2.SubmitTreeSignaturesResponse()

    def SubmitSignedForfeitTxs(self, request: Any, context: grpc.ServicerContext) -> Any:
        forfeits = list(request.signed_forfeit_txs)
        commitment = request.signed_commitment_tx
        if not forfeits and not commitment:
            self._invalid(context, "either forfeit txs or commitment tx must be set")
        self._run(context, lambda: self.batches.submit_forfeits(forfeits, commitment))
        return service_pb2.SubmitSignedForfeitTxsResponse()

    def GetEventStream(
        self, request: Any, context: grpc.ServicerContext
    ) -> Iterator[service_pb2.GetEventStreamResponse]:
        listener = self.batches.events.listen(request.topics)
        context.add_callback(lambda: _wake(listener.events))
        try:
            yield service_pb2.GetEventStreamResponse(
                stream_started=types_pb2.StreamStartedEvent(id=listener.id)
            )
            while context.is_active():
                try:
                    event = listener.events.get(timeout=HEARTBEAT_SECONDS)
                except queue.Empty:
                    yield service_pb2.GetEventStreamResponse(heartbeat=types_pb2.Heartbeat())
                    continue
                if event is None:
                    return
                yield event  # type: ignore[misc]
        finally:
            self.batches.events.remove(listener)

    def UpdateStreamTopics(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.stream_id:
            self._invalid(context, "missing stream id")
        change = request.WhichOneof("topics_change")
        bus = self.batches.events
        try:
            if change == "overwrite":
                every = bus.overwrite(request.stream_id, list(request.overwrite.topics))
                return service_pb2.UpdateStreamTopicsResponse(all_topics=every)
            if change == "modify":
                add, remove = list(request.modify.add_topics), list(request.modify.remove_topics)
                if not add and not remove:
                    self._invalid(context, "missing topics to add or remove")
                every = bus.modify(request.stream_id, add, remove)
                return service_pb2.UpdateStreamTopicsResponse(
                    topics_added=add, topics_removed=remove, all_topics=every
                )
        except KeyError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0]))
        self._invalid(context, "missing topics")
        raise AssertionError("abort returned")


def _wake(events: queue.Queue[object | None]) -> None:
    with contextlib.suppress(queue.Full):
        events.put_nowait(None)
