"""The simulator's IndexerService beyond GetVtxos' basics: every filter of GetVtxos, the
VTXO chain, virtual txs, commitment txs and script subscriptions, answered from the ledger
and the tx history as arkd v0.9.15 answers them (internal/interface/grpc/handlers/
indexer.go and internal/core/application/indexer.go: validation messages, page numbers
starting at 1, no page in the answer when none was asked for).

The simulator has no VTXO trees, connectors or forfeits (its batches are a stand-in
commitment tx paying the VTXO scripts directly), so GetVtxoTree, GetVtxoTreeLeaves,
GetConnectors, GetForfeitTxs and GetBatchSweepTransactions stay unimplemented, as do
GetAsset and the intent/token access to chains and txs.
"""

from __future__ import annotations

import queue
import string
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn, TypeVar

import grpc

from .._proto.ark.v1 import indexer_pb2, indexer_pb2_grpc
from .errors import ArkdError, _Code, code
from .ledger import Ledger
from .service import HEARTBEAT_SECONDS, _abort
from .subscriptions import NotFound, Subscriptions, indexer_vtxo
from .txhistory import TxHistory
from .vtxos import SimVtxo, recoverable

__all__ = ["SimIndexerServicer"]

T = TypeVar("T")

# internal/core/application/indexer.go
MAX_PAGE_VTXOS = 100
MAX_PAGE_CHAIN = 100
MAX_PAGE_VIRTUAL_TXS = 100

_CHAIN = indexer_pb2.IndexerChainedTxType
_HEX = set(string.hexdigits)


class SimIndexerServicer(indexer_pb2_grpc.IndexerServiceServicer):
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.history = TxHistory(ledger.clock)
        self.subscriptions = Subscriptions()
        ledger.observe(self.history.record)
        ledger.observe(self.subscriptions.dispatch)

    # ------------------------------------------------------------------ VTXOs

    def GetVtxos(self, request: Any, context: grpc.ServicerContext) -> Any:
        page = _page(request, context)
        scripts = list(request.scripts)
        for script in scripts:
            _check_script(script, context)
        outpoints = [_check_outpoint(o, context) for o in request.outpoints]
        if not scripts and not outpoints:
            _invalid(context, "missing outpoints or scripts filter")
        if scripts and outpoints:
            _invalid(context, "outpoints and scripts filters are mutually exclusive")
        if outpoints:
            found = self.ledger.get_vtxos(outpoints=outpoints)
        else:
            found = self._by_scripts(request, scripts, context)
        items, page_out = _paginate(found, page, MAX_PAGE_VTXOS)
        return indexer_pb2.GetVtxosResponse(vtxos=[indexer_vtxo(v) for v in items], page=page_out)

    def _by_scripts(
        self, request: Any, scripts: Sequence[str], context: grpc.ServicerContext
    ) -> list[SimVtxo]:
        flags = {
            "spendable": request.spendable_only,
            "spent": request.spent_only,
            "recoverable": request.recoverable_only,
            "pending": request.pending_only,
            "renewable": request.renewable_only,
        }
        if sum(flags.values()) > 1:
            _invalid(
                context,
                "spendable, spent, recoverable, pending and renewable filters are mutually "
                "exclusive",
            )
        after, before = request.after, request.before
        if after < 0 or before < 0:
            _invalid(context, "after and before must be greater than or equal to 0")
        if after > 0 and before > 0 and before <= after:
            _invalid(context, "before must be greater than after")
        now = int(self.ledger.clock())
        found = [
            v
            for v in self.ledger.get_vtxos(scripts=scripts)
            if v.updated_at >= after and (before == 0 or v.updated_at <= before)
        ]
        # The simulator sweeps at expiry: an expired VTXO counts as swept in the filters.
        if flags["pending"]:
            return [v for v in found if v.pending]
        if flags["spendable"]:
            return [v for v in found if not v.spent and not recoverable(v, now)]
        if flags["spent"]:
            return [v for v in found if v.spent or recoverable(v, now)]
        if flags["recoverable"]:
            return [v for v in found if not v.spent and recoverable(v, now)]
        if flags["renewable"]:
            return [v for v in found if not v.spent]
        return found

    # ------------------------------------------------------------------ txs

    def GetVtxoChain(self, request: Any, context: grpc.ServicerContext) -> Any:
        page = _page(request, context)
        if request.HasField("intent") or request.page_token:
            _unimplemented(context, "chain access by intent or page token is not simulated")
        if not request.HasField("outpoint"):
            _invalid(context, "missing outpoint")
        _check_txid(request.outpoint.txid, context)
        start = f"{request.outpoint.txid}:{request.outpoint.vout}"
        chain = _guard(context, lambda: self._walk(start))
        items, page_out = _paginate(chain, page, MAX_PAGE_CHAIN)
        return indexer_pb2.GetVtxoChainResponse(chain=items, page=page_out)

    def _walk(self, start: str) -> list[indexer_pb2.IndexerChain]:
        chain: list[indexer_pb2.IndexerChain] = []
        visited: set[str] = set()
        frontier = [start]
        while frontier:
            vtxos = self.ledger.get_vtxos(outpoints=frontier)
            if not vtxos:
                raise code.INTERNAL_ERROR(f"vtxo not found for outpoint: {frontier}")
            following: list[str] = []
            for vtxo in vtxos:
                if vtxo.outpoint in visited:
                    continue
                visited.add(vtxo.outpoint)
                record = self.history.ark_tx(vtxo.txid)
                if record is None and vtxo.preconfirmed:
                    raise code.INTERNAL_ERROR(
                        f"failed to retrieve offchain tx: {vtxo.txid} is not in this "
                        "simulator's history"
                    )
                if record is None:
                    root = vtxo.commitment_txids[0] if vtxo.commitment_txids else vtxo.txid
                    chain.append(
                        indexer_pb2.IndexerChain(
                            txid=root,
                            expires_at=vtxo.expires_at,
                            type=_CHAIN.Value("INDEXER_CHAINED_TX_TYPE_COMMITMENT"),
                        )
                    )
                    continue
                ark = indexer_pb2.IndexerChain(
                    txid=vtxo.txid,
                    expires_at=vtxo.expires_at,
                    type=_CHAIN.Value("INDEXER_CHAINED_TX_TYPE_ARK"),
                )
                checkpoints = []
                for cp in record.checkpoints:
                    checkpoints.append(
                        indexer_pb2.IndexerChain(
                            txid=cp.txid,
                            expires_at=vtxo.expires_at,
                            type=_CHAIN.Value("INDEXER_CHAINED_TX_TYPE_CHECKPOINT"),
                            spends=[cp.spends],
                        )
                    )
                    ark.spends.append(cp.txid)
                    if cp.spends not in visited:
                        following.append(cp.spends)
                chain.append(ark)
                chain.extend(checkpoints)
            frontier = following
        return chain

    def GetVirtualTxs(self, request: Any, context: grpc.ServicerContext) -> Any:
        page = _page(request, context)
        if request.HasField("intent"):
            _unimplemented(context, "virtual tx access by intent is not simulated")
        if not request.txids:
            _invalid(context, "missing txids")
        for txid in request.txids:
            _check_txid(txid, context)
        found = [tx for tx in map(self.history.virtual_tx, request.txids) if tx is not None]
        items, page_out = _paginate(found, page, MAX_PAGE_VIRTUAL_TXS)
        return indexer_pb2.GetVirtualTxsResponse(txs=items, page=page_out)

    def GetCommitmentTx(self, request: Any, context: grpc.ServicerContext) -> Any:
        _check_txid(request.txid, context)
        record = self.history.commitment(request.txid)
        if record is None:
            context.abort(grpc.StatusCode.INTERNAL, "batch not found")
        return indexer_pb2.GetCommitmentTxResponse(
            started_at=record.at,
            ended_at=record.at,
            batches={
                0: indexer_pb2.IndexerBatch(
                    total_output_amount=record.output_amount,
                    total_output_vtxos=record.output_vtxos,
                    expires_at=record.expires_at,
                    swept=False,
                )
            },
            total_input_amount=0,
            total_input_vtxos=0,
            total_output_amount=record.output_amount,
            total_output_vtxos=record.output_vtxos,
        )

    # ------------------------------------------------------------------ subscriptions

    def SubscribeForScripts(self, request: Any, context: grpc.ServicerContext) -> Any:
        scripts = _scripts(request.scripts, context)
        if not request.subscription_id:
            sub_id = self.subscriptions.create(scripts).id
        else:
            sub_id = request.subscription_id
            self._on_subscription(context, sub_id, lambda: self.subscriptions.add(sub_id, scripts))
        return indexer_pb2.SubscribeForScriptsResponse(subscription_id=sub_id)

    def UnsubscribeForScripts(self, request: Any, context: grpc.ServicerContext) -> Any:
        sub_id = request.subscription_id
        if not sub_id:
            _invalid(context, "missing subscription id")
        if not request.scripts:
            self._on_subscription(context, sub_id, lambda: self.subscriptions.clear(sub_id))
            self.subscriptions.drop(sub_id)
        else:
            scripts = list(request.scripts)
            self._on_subscription(
                context, sub_id, lambda: self.subscriptions.remove(sub_id, scripts)
            )
        return indexer_pb2.UnsubscribeForScriptsResponse()

    def UpdateSubscription(self, request: Any, context: grpc.ServicerContext) -> Any:
        sub_id = request.subscription_id
        if not sub_id:
            _invalid(context, "missing subscription id")
        if not request.HasField("filter"):
            _invalid(context, "missing filter")
        self._apply_filter(sub_id, request.filter, context, initial=False)
        return indexer_pb2.UpdateSubscriptionResponse()

    def GetSubscription(
        self, request: Any, context: grpc.ServicerContext
    ) -> Iterator[indexer_pb2.GetSubscriptionResponse]:
        sub_id = request.subscription_id
        fresh = not sub_id
        if fresh:
            sub_id = self.subscriptions.create().id
        sub, generation = self._on_subscription(
            context, sub_id, lambda: self.subscriptions.attach(sub_id)
        )
        # Wake the loop below as soon as the client goes away.
        context.add_callback(lambda: self.subscriptions.wake(sub))
        try:
            if fresh and request.HasField("filter"):
                self._apply_filter(sub_id, request.filter, context, initial=True)
            context.send_initial_metadata(())
            if fresh:
                yield indexer_pb2.GetSubscriptionResponse(
                    subscription_started=indexer_pb2.SubscriptionStartedEvent(
                        subscription_id=sub_id
                    )
                )
            while context.is_active() and not sub.closed and sub.generation == generation:
                try:
                    item = sub.events.get(timeout=HEARTBEAT_SECONDS)
                except queue.Empty:
                    yield indexer_pb2.GetSubscriptionResponse(
                        heartbeat=indexer_pb2.IndexerHeartbeat()
                    )
                    continue
                if item is not None and sub.generation == generation:
                    yield item
        finally:
            # A subscription made by this stream has no reconnect window (arkd's is 0).
            if fresh:
                self.subscriptions.drop(sub_id)

    def _apply_filter(
        self, sub_id: str, filter_: Any, context: grpc.ServicerContext, *, initial: bool
    ) -> None:
        if filter_.expressions:
            _unimplemented(context, "transaction filter expressions are not simulated")
        scripts = filter_.scripts if filter_.HasField("scripts") else None
        add = _scripts(scripts.add, context) if scripts is not None and scripts.add else []
        remove = []
        if scripts is not None and scripts.remove and not initial:
            remove = _scripts(scripts.remove, context)
        subs = self.subscriptions
        self._on_subscription(context, sub_id, lambda: subs.get(sub_id))
        if add:
            self._on_subscription(context, sub_id, lambda: subs.add(sub_id, add))
        if initial or scripts is None:
            return
        if remove:
            self._on_subscription(context, sub_id, lambda: subs.remove(sub_id, remove))
        elif not add:
            self._on_subscription(context, sub_id, lambda: subs.clear(sub_id))

    def _on_subscription(self, context: grpc.ServicerContext, sub_id: str, fn: Any) -> Any:
        try:
            return fn()
        except NotFound:
            _abort(
                context,
                _SUBSCRIPTION_NOT_FOUND(f"subscription {sub_id} not found", subscription_id=sub_id),
            )


# pkg/errors/errors.go at v0.9.15; kept here (not in errors.py's table) while the batch
# work edits that table.
_SUBSCRIPTION_NOT_FOUND = _Code(50, "SUBSCRIPTION_NOT_FOUND", grpc.StatusCode.NOT_FOUND)


# ---------------------------------------------------------------------- helpers


def _guard(context: grpc.ServicerContext, fn: Any) -> Any:
    try:
        return fn()
    except ArkdError as error:
        _abort(context, error)


def _invalid(context: grpc.ServicerContext, message: str) -> NoReturn:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
    raise AssertionError("abort returned")


def _unimplemented(context: grpc.ServicerContext, message: str) -> NoReturn:
    context.abort(grpc.StatusCode.UNIMPLEMENTED, message)
    raise AssertionError("abort returned")


def _page(request: Any, context: grpc.ServicerContext) -> tuple[int, int] | None:
    if not request.HasField("page"):
        return None
    if request.page.size <= 0:
        _invalid(context, "invalid page size")
    if request.page.index < 0:
        _invalid(context, "invalid page index")
    return request.page.size, request.page.index


def _paginate(
    items: Sequence[T], page: tuple[int, int] | None, max_size: int
) -> tuple[list[T], indexer_pb2.IndexerPageResponse | None]:
    if page is None:
        return list(items), None
    size, number = page
    size = size if size > 0 else max_size
    number = max(number, 1)
    total = -(-len(items) // size)
    response = indexer_pb2.IndexerPageResponse(
        current=number, next=min(number + 1, total), total=total
    )
    start = (number - 1) * size
    return list(items[start : start + size]), response


def _check_txid(txid: str, context: grpc.ServicerContext) -> None:
    if not txid:
        _invalid(context, "missing txid")
    if not set(txid) <= _HEX or len(txid) % 2:
        _invalid(context, "invalid txid format")
    if len(txid) != 64:
        _invalid(context, "invalid txid length")


def _check_outpoint(outpoint: str, context: grpc.ServicerContext) -> str:
    parts = outpoint.split(":")
    if len(parts) != 2:
        _invalid(context, "invalid outpoint format")
    _check_txid(parts[0], context)
    if not parts[1].isdigit():
        _invalid(context, f"invalid vout {parts[1]}")
    return f"{parts[0]}:{int(parts[1])}"


def _check_script(script: str, context: grpc.ServicerContext) -> None:
    if not script:
        _invalid(context, "missing script")
    try:
        raw = bytes.fromhex(script)
    except ValueError:
        _invalid(context, "invalid script format, must be hex")
    if len(raw) != 34 or raw[:2] != b"\x51\x20":
        _invalid(context, "invalid script, must be P2TR")


def _scripts(scripts: Sequence[str], context: grpc.ServicerContext) -> list[str]:
    if not scripts:
        _invalid(context, "missing scripts")
    for script in scripts:
        _check_script(script, context)
    return list(scripts)
