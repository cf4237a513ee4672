"""The indexer's script subscriptions (SubscribeForScripts, GetSubscription, ...).

As arkd (internal/interface/grpc/handlers/indexer.go at v0.9.15): a subscription is an id
with a set of P2TR scripts; every transaction event touching one of them is queued for it
as an ``IndexerSubscriptionEvent`` naming the scripts involved, the new and the spent
VTXOs of those scripts, the tx and its checkpoints; a full queue skips the event rather
than block; one stream at a time reads a subscription, a newer one displacing the older.
Not modelled: the CEL transaction filters (``filter.expressions``) and the reconnect
window after which arkd forgets an unread subscription (here at most ``MAX_SUBSCRIPTIONS``
live, the oldest dropped first).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import queue
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from .._proto.ark.v1 import indexer_pb2
from .vtxos import SimTxEvent, SimVtxo

__all__ = ["NotFound", "Subscription", "Subscriptions"]

MAX_SUBSCRIPTIONS = 1024
#: Events a subscription holds for its reader; beyond that they are skipped, as arkd does.
QUEUE_SIZE = 64


class NotFound(KeyError):
    pass


@dataclasses.dataclass
class Subscription:
    id: str
    scripts: set[str]
    events: queue.Queue[Any] = dataclasses.field(
        default_factory=lambda: queue.Queue(maxsize=QUEUE_SIZE)
    )
    #: Bumped by each new reader; an older reader seeing a newer value stops.
    generation: int = 0
    closed: bool = False


class Subscriptions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: collections.OrderedDict[str, Subscription] = collections.OrderedDict()

    def create(self, scripts: Iterable[str] = ()) -> Subscription:
        sub = Subscription(str(uuid.uuid4()), {s.lower() for s in scripts})
        with self._lock:
            self._subs[sub.id] = sub
            while len(self._subs) > MAX_SUBSCRIPTIONS:
                _, dropped = self._subs.popitem(last=False)
                _close(dropped)
        return sub

    def get(self, subscription_id: str) -> Subscription:
        with self._lock:
            sub = self._subs.get(subscription_id)
        if sub is None:
            raise NotFound(subscription_id)
        return sub

    def add(self, subscription_id: str, scripts: Iterable[str]) -> None:
        with self._lock:
            self._require(subscription_id).scripts.update(s.lower() for s in scripts)

    def remove(self, subscription_id: str, scripts: Iterable[str]) -> None:
        with self._lock:
            self._require(subscription_id).scripts.difference_update(s.lower() for s in scripts)

    def clear(self, subscription_id: str) -> None:
        with self._lock:
            self._require(subscription_id).scripts.clear()

    def drop(self, subscription_id: str) -> None:
        with self._lock:
            sub = self._subs.pop(subscription_id, None)
        if sub is not None:
            _close(sub)

    def attach(self, subscription_id: str) -> tuple[Subscription, int]:
        """Become the subscription's reader, displacing any earlier one."""
        with self._lock:
            sub = self._require(subscription_id)
            sub.generation += 1
            generation = sub.generation
        # Wake a displaced reader so it sees the new generation now.
        _offer(sub, None)
        return sub, generation

    def wake(self, sub: Subscription) -> None:
        """Make the subscription's reader look at its state now."""
        _offer(sub, None)

    def dispatch(self, event: SimTxEvent) -> None:
        """A ledger observer: queue ``event`` for each subscription it touches."""
        if event.kind not in ("ark_tx", "commitment_tx"):
            return
        with self._lock:
            subs = list(self._subs.values())
        for sub in subs:
            message = _event_for(sub.scripts.copy(), event)
            if message is not None:
                _offer(sub, message)

    def _require(self, subscription_id: str) -> Subscription:
        sub = self._subs.get(subscription_id)
        if sub is None:
            raise NotFound(subscription_id)
        return sub


def _event_for(scripts: set[str], event: SimTxEvent) -> Any:
    new = [v for v in event.spendable if v.script in scripts]
    spent = [v for v in event.spent if v.script in scripts]
    if not new and not spent:
        return None
    involved = sorted({v.script for v in (*new, *spent)})
    return indexer_pb2.GetSubscriptionResponse(
        event=indexer_pb2.IndexerSubscriptionEvent(
            txid=event.txid,
            scripts=involved,
            new_vtxos=[indexer_vtxo(v) for v in new],
            spent_vtxos=[indexer_vtxo(v) for v in spent],
            tx=event.tx,
            checkpoint_txs={
                outpoint: indexer_pb2.IndexerTxData(txid=txid, tx=tx)
                for outpoint, txid, tx in event.checkpoints
            },
        )
    )


def indexer_vtxo(v: SimVtxo) -> indexer_pb2.IndexerVtxo:
    return indexer_pb2.IndexerVtxo(
        outpoint=indexer_pb2.IndexerOutpoint(txid=v.txid, vout=v.vout),
        created_at=v.created_at,
        expires_at=v.expires_at,
        amount=v.amount,
        script=v.script,
        is_preconfirmed=v.preconfirmed,
        is_swept=v.swept,
        is_spent=v.spent,
        spent_by=v.spent_by,
        commitment_txids=v.commitment_txids,
        settled_by=v.settled_by,
        ark_txid=v.ark_txid,
    )


def _offer(sub: Subscription, item: Any) -> None:
    with contextlib.suppress(queue.Full):
        sub.events.put_nowait(item)


def _close(sub: Subscription) -> None:
    sub.closed = True
    _offer(sub, None)
