"""arkd's REST routes: which HTTP method and path reach which RPC.

The table is the ``google.api.http`` annotations of arkd's protos at v0.9.15
(api-spec/protobuf/ark/v1/service.proto and indexer.proto), which the project's proto
copy leaves out. Request and response types, and whether an RPC streams, come from the
compiled descriptors, so the table holds only what the annotations add.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

from .._proto.ark.v1 import indexer_pb2, service_pb2

__all__ = ["ARKD_ROUTES", "Route", "RouteMatch", "Router"]

_SERVICES = {
    "ArkService": service_pb2.DESCRIPTOR.services_by_name["ArkService"],
    "IndexerService": indexer_pb2.DESCRIPTOR.services_by_name["IndexerService"],
}


@dataclasses.dataclass(frozen=True)
class Route:
    service: str
    rpc: str
    method: str
    #: A path template; ``{a.b}`` binds one path segment to the request field ``a.b``.
    path: str
    #: ``body: "*"``: the whole request message is the JSON body.
    body: bool = False

    @property
    def descriptor(self) -> MethodDescriptor:
        return _SERVICES[self.service].methods_by_name[self.rpc]

    @property
    def streaming(self) -> bool:
        return bool(self.descriptor.server_streaming)

    @property
    def request_type(self) -> type[Any]:
        return message_factory.GetMessageClass(self.descriptor.input_type)

    @property
    def bindings(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{([^}]+)\}", self.path))


def _routes() -> tuple[Route, ...]:
    ark, idx = "ArkService", "IndexerService"
    get, post = "GET", "POST"
    table: Sequence[tuple[str, str, str, str, bool]] = (
        (ark, "GetInfo", get, "/v1/info", False),
        (ark, "RegisterIntent", post, "/v1/batch/registerIntent", True),
        (ark, "EstimateIntentFee", post, "/v1/batch/estimateFee", True),
        (ark, "DeleteIntent", post, "/v1/batch/deleteIntent", True),
        (ark, "ConfirmRegistration", post, "/v1/batch/ack", True),
        (ark, "SubmitTreeNonces", post, "/v1/batch/tree/submitNonces", True),
        (ark, "SubmitTreeSignatures", post, "/v1/batch/tree/submitSignatures", True),
        (ark, "SubmitSignedForfeitTxs", post, "/v1/batch/submitForfeitTxs", True),
        (ark, "GetEventStream", get, "/v1/batch/events", False),
        (ark, "UpdateStreamTopics", post, "/v1/batch/updateTopics", True),
        (ark, "SubmitTx", post, "/v1/tx/submit", True),
        (ark, "FinalizeTx", post, "/v1/tx/finalize", True),
        (ark, "GetPendingTx", post, "/v1/tx/pending", True),
        (ark, "GetTransactionsStream", get, "/v1/txs", False),
        (ark, "GetIntent", get, "/v1/intent", False),
        (ark, "GetIntent", post, "/v1/intent", True),
        (idx, "GetCommitmentTx", get, "/v1/indexer/commitmentTx/{txid}", False),
        (idx, "GetForfeitTxs", get, "/v1/indexer/commitmentTx/{txid}/forfeitTxs", False),
        (idx, "GetConnectors", get, "/v1/indexer/commitmentTx/{txid}/connectors", False),
        (
            idx,
            "GetVtxoTree",
            get,
            "/v1/indexer/batch/{batch_outpoint.txid}/{batch_outpoint.vout}/tree",
            False,
        ),
        (
            idx,
            "GetVtxoTreeLeaves",
            get,
            "/v1/indexer/batch/{batch_outpoint.txid}/{batch_outpoint.vout}/tree/leaves",
            False,
        ),
        (idx, "GetVtxos", get, "/v1/indexer/vtxos", False),
        (idx, "GetVtxoChain", get, "/v1/indexer/vtxo/{outpoint.txid}/{outpoint.vout}/chain", False),
        (idx, "GetVirtualTxs", get, "/v1/indexer/virtualTx/{txids}", False),
        (idx, "GetAsset", get, "/v1/indexer/asset/{asset_id}", False),
        (
            idx,
            "GetBatchSweepTransactions",
            get,
            "/v1/indexer/batch/{batch_outpoint.txid}/{batch_outpoint.vout}/sweepTxs",
            False,
        ),
        (idx, "SubscribeForScripts", post, "/v1/indexer/script/subscribe", True),
        (idx, "UnsubscribeForScripts", post, "/v1/indexer/script/unsubscribe", True),
        (idx, "GetSubscription", get, "/v1/indexer/script/subscription/{subscription_id}", False),
        (idx, "GetSubscription", get, "/v1/indexer/subscription", False),
        (idx, "UpdateSubscription", post, "/v1/indexer/subscription/update", True),
    )
    return tuple(Route(*row) for row in table)


#: Every ArkService and IndexerService route arkd v0.9.15's gateway serves.
ARKD_ROUTES = _routes()


@dataclasses.dataclass(frozen=True)
class RouteMatch:
    route: Route
    #: Field path -> the raw (percent-decoded) path segment bound to it.
    params: dict[str, str]


class Router:
    """Finds the route for a method and path; distinguishes "no such path" from "wrong
    method", which the gateway answers differently (404 and 405)."""

    def __init__(self, routes: Sequence[Route] = ARKD_ROUTES) -> None:
        self._compiled = [(route, _compile(route)) for route in routes]

    def match(self, method: str, path: str) -> RouteMatch | None:
        for route, pattern in self._compiled:
            found = pattern.fullmatch(path)
            if found is not None and route.method == method:
                return RouteMatch(route, dict(zip(route.bindings, found.groups(), strict=True)))
        return None

    def knows_path(self, path: str) -> bool:
        """Whether some route serves ``path`` (under any method)."""
        return any(pattern.fullmatch(path) for _, pattern in self._compiled)


def _compile(route: Route) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]+\}", route.path)
    return re.compile("([^/]+)".join(re.escape(p) for p in parts))
