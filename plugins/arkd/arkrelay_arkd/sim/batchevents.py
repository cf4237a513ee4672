"""GetEventStream's events for one batch, each with the topics arkd gives it
(application/utils.go ``treeTxEvents``, ``treeTxNoncesEvents``, ``treeSignatureEvents``,
``getVtxoTreeTopic``; service.go ``propagateEvents``): VTXO-tree events go to the tree tx's
cosigners (compressed keys), connector-tree events to the forfeited VTXOs, BatchFailed to
the batch's coins, everything else to every listener."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from .._proto.ark.v1 import service_pb2, types_pb2
from .treesign import TAP_KEY_SIG
from .txtree import TreeTx, cosigners_of

__all__ = [
    "Event",
    "batch_failed",
    "batch_finalization",
    "batch_finalized",
    "batch_started",
    "cosigner_topics",
    "tree_nonces",
    "tree_signatures",
    "tree_signing_started",
    "tree_txs",
]

Event = tuple[service_pb2.GetEventStreamResponse, Sequence[str]]


def _ev(topics: Sequence[str] = (), **kind: object) -> Event:
    return service_pb2.GetEventStreamResponse(**kind), topics


def cosigner_topics(node: TreeTx) -> list[str]:
    return [k.hex() for k in cosigners_of(node.psbt)]


def batch_started(batch_id: str, intent_hashes: Iterable[str], expiry: int) -> Event:
    return _ev(
        batch_started=types_pb2.BatchStartedEvent(
            id=batch_id, intent_id_hashes=list(intent_hashes), batch_expiry=expiry
        )
    )


def tree_txs(
    batch_id: str, tree: TreeTx, batch_index: int, topics: Callable[[TreeTx], list[str]]
) -> list[Event]:
    out = []
    for node in tree.walk():
        topic = topics(node)
        tx = types_pb2.TreeTxEvent(
            id=batch_id,
            topic=topic,
            batch_index=batch_index,
            txid=node.txid,
            tx=node.psbt.to_string(),
            children={i: c.txid for i, c in node.children.items()},
        )
        out.append(_ev(topic, tree_tx=tx))
    return out


def tree_signing_started(batch_id: str, cosigners: list[str], commitment_b64: str) -> Event:
    return _ev(
        tree_signing_started=types_pb2.TreeSigningStartedEvent(
            id=batch_id, cosigners_pubkeys=cosigners, unsigned_commitment_tx=commitment_b64
        )
    )


def tree_nonces(
    batch_id: str,
    tree: TreeTx,
    nonces_of_tx: Callable[[str], Mapping[str, bytes]],
    aggregated: Mapping[str, bytes],
) -> list[Event]:
    """One TreeNonces per tx (every cosigner's nonce by x-only key), then the aggregates."""
    out = []
    for node in tree.walk():
        topic = cosigner_topics(node)
        nonces = {k: v.hex() for k, v in nonces_of_tx(node.txid).items()}
        out.append(
            _ev(
                topic,
                tree_nonces=types_pb2.TreeNoncesEvent(
                    id=batch_id, topic=topic, txid=node.txid, nonces=nonces
                ),
            )
        )
    out.append(
        _ev(
            tree_nonces_aggregated=types_pb2.TreeNoncesAggregatedEvent(
                id=batch_id, tree_nonces={t: n.hex() for t, n in aggregated.items()}
            )
        )
    )
    return out


def tree_signatures(batch_id: str, tree: TreeTx) -> list[Event]:
    out = []
    for node in tree.walk():
        topic = cosigner_topics(node)
        signature = node.psbt.inputs[0].unknown.get(TAP_KEY_SIG, b"")
        out.append(
            _ev(
                topic,
                tree_signature=types_pb2.TreeSignatureEvent(
                    id=batch_id,
                    topic=topic,
                    batch_index=0,
                    txid=node.txid,
                    signature=signature.hex(),
                ),
            )
        )
    return out


def batch_finalization(batch_id: str, commitment_b64: str) -> Event:
    return _ev(
        batch_finalization=types_pb2.BatchFinalizationEvent(
            id=batch_id, commitment_tx=commitment_b64
        )
    )


def batch_finalized(batch_id: str, commitment_txid: str) -> Event:
    return _ev(
        batch_finalized=types_pb2.BatchFinalizedEvent(id=batch_id, commitment_txid=commitment_txid)
    )


def batch_failed(batch_id: str, reason: str, coins: Sequence[str]) -> Event:
    return _ev(coins, batch_failed=types_pb2.BatchFailedEvent(id=batch_id, reason=reason))
