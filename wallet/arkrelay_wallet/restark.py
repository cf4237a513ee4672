"""The Ark server over its REST interface: what ``recovery`` needs, for a wallet that
knows only the server's URL (get_info's ``ark.server_url``) and not a gRPC target.

arkd's REST answers are the protobuf messages of its gRPC API in protojson (docs/
simulators.md, "The REST interface"), so each is read into the same message the gRPC
client receives (``google.protobuf.json_format``) and handed to the arkd plugin's own
conversions and checks: the server's co-signatures on a pending tx, the ownership proof,
the signatures placed. Only the transport differs from ``ArkdBackend``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import httpx
import trio
from arkrelay_arkd import arktx, offchain, ownership
from arkrelay_arkd._proto.ark.v1 import indexer_pb2, service_pb2
from arkrelay_arkd.convert import ServerParams, owner_key, server_params, vtxo_from_proto
from arkrelay_arkd.tapscript import default_vtxo_tree
from google.protobuf import json_format
from google.protobuf.message import Message

from arkrelay_core.interfaces import (
    FinalizedTx,
    InputSignature,
    OwnershipProof,
    SubmittedTx,
    Vtxo,
)
from arkrelay_core.protocol import PendingArkTx

from .link import DEFAULT_TIMEOUT, WalletError

__all__ = ["ArkServerRest"]

#: arkd's largest GetVtxos page (internal/core/application/indexer.go).
PAGE_SIZE = 100

#: Pending txs kept for finalize_tx (a wallet has a handful at most).
REMEMBERED = 64

M = TypeVar("M", bound=Message)


class ArkServerRest:
    """The recovery calls (``recovery.ArkServer``) against arkd's REST interface at
    ``server_url``. Every call is bounded by ``timeout`` seconds; a refusal or an
    unreachable server is a WalletError naming the RPC."""

    def __init__(self, server_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not server_url:
            raise WalletError("no Ark server URL (get_info ark.server_url)")
        self.server_url = server_url.rstrip("/")
        self.timeout = timeout
        self._params: ServerParams | None = None
        #: Pending txs seen, by ark txid: finalize_tx then knows what each one creates.
        self._submitted: dict[str, SubmittedTx] = {}

    # ------------------------------------------------------------------ transport

    async def _call(
        self, rpc: str, path: str, answer: M, *, body: Message | None = None, params: Any = None
    ) -> M:
        with trio.move_on_after(self.timeout) as scope:
            async with httpx.AsyncClient(base_url=self.server_url, timeout=self.timeout) as client:
                try:
                    if body is None:
                        response = await client.get(path, params=params)
                    else:
                        response = await client.post(path, json=json_format.MessageToDict(body))
                except httpx.HTTPError as exc:
                    raise WalletError(f"the Ark server is unreachable ({rpc}): {exc}") from exc
        if scope.cancelled_caught:
            raise WalletError(f"the Ark server did not answer {rpc} within {self.timeout:g}s")
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200:
            why = data.get("message") if isinstance(data, dict) else response.text[:200]
            raise WalletError(f"the Ark server refused {rpc} ({response.status_code}): {why}")
        try:
            return json_format.ParseDict(data, answer, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise WalletError(f"the Ark server's {rpc} answer is malformed: {exc}") from exc

    async def _server_params(self) -> ServerParams:
        if self._params is None:
            info = await self._call("GetInfo", "/v1/info", service_pb2.GetInfoResponse())
            self._params = server_params(info)
        return self._params

    async def _vtxos(self, query: list[tuple[str, Any]]) -> list[Any]:
        found: list[Any] = []
        index = 1
        while True:
            page = [*query, ("page.size", PAGE_SIZE), ("page.index", index)]
            resp = await self._call(
                "GetVtxos", "/v1/indexer/vtxos", indexer_pb2.GetVtxosResponse(), params=page
            )
            found.extend(resp.vtxos)
            if not resp.HasField("page") or not resp.vtxos or resp.page.current >= resp.page.total:
                return found
            index = resp.page.current + 1

    # ------------------------------------------------------------------ recovery.ArkServer

    async def list_vtxos(self, owner: str, *, spendable_only: bool = True) -> list[Vtxo]:
        params = await self._server_params()
        key = owner_key(owner)
        query: list[tuple[str, Any]] = [
            ("scripts", default_vtxo_tree(key, signer, params.exit_delay).pk_script.hex())
            for signer in params.signers
        ]
        if spendable_only:
            query.append(("spendableOnly", "true"))
        return [vtxo_from_proto(v, owner) for v in await self._vtxos(query)]

    async def get_vtxos(self, vtxo_ids: Sequence[str]) -> list[Vtxo]:
        if not vtxo_ids:
            return []
        return [
            vtxo_from_proto(v, "") for v in await self._vtxos([("outpoints", i) for i in vtxo_ids])
        ]

    async def build_ownership_proof(
        self, vtxos: Sequence[Vtxo], *, expire_at: int
    ) -> OwnershipProof:
        return ownership.build(await self._server_params(), vtxos, expire_at)

    def add_proof_signatures(
        self, proof: OwnershipProof, signatures: Sequence[InputSignature]
    ) -> str:
        return ownership.add_proof_signatures(proof, signatures)

    def add_signatures(self, psbt: str, signatures: Sequence[InputSignature]) -> str:
        return offchain.add_signatures(psbt, signatures)

    async def get_pending_txs(self, proof: str, message: str) -> list[SubmittedTx]:
        params = await self._server_params()
        request = service_pb2.GetPendingTxRequest()
        request.intent.proof, request.intent.message = proof, message
        resp = await self._call(
            "GetPendingTx", "/v1/tx/pending", service_pb2.GetPendingTxResponse(), body=request
        )
        return [self._remember(offchain.check_submission(params, p)) for p in resp.pending_txs]

    async def finalize_tx(self, ark_txid: str, final_checkpoint_txs: Sequence[str]) -> FinalizedTx:
        request = service_pb2.FinalizeTxRequest(
            ark_txid=ark_txid, final_checkpoint_txs=list(final_checkpoint_txs)
        )
        await self._call(
            "FinalizeTx", "/v1/tx/finalize", service_pb2.FinalizeTxResponse(), body=request
        )
        created: tuple[Vtxo, ...] = ()
        submitted = self._submitted.get(ark_txid)
        if submitted is not None:  # what it created, as the server's indexer now lists it
            final = arktx.decode_psbt(submitted.final_ark_tx)
            ids = [f"{ark_txid}:{out.index}" for out in arktx.vtxo_outputs(final)]
            created = tuple(await self.get_vtxos(ids))
        spent = offchain.spent_outpoints(final_checkpoint_txs)
        return FinalizedTx(ark_txid=ark_txid, spent=spent, created=created)

    # ------------------------------------------------------------------ hand-over

    async def submitted_from(self, pending: PendingArkTx) -> SubmittedTx:
        """A 31341's ``pending_tx`` as ``recovery.finalize_submitted`` takes it, after the
        same check as a SubmitTx answer: the Ark server's own signature on every input."""
        params = await self._server_params()
        answer = service_pb2.SubmitTxResponse(
            ark_txid=pending.ark_txid,
            final_ark_tx=pending.final_ark_tx,
            signed_checkpoint_txs=list(pending.checkpoint_txs),
        )
        try:
            named = arktx.txid(arktx.decode_psbt(pending.final_ark_tx)) == pending.ark_txid
        except arktx.ArkTxError as exc:
            raise WalletError(f"the pending tx's final ark tx is unusable: {exc}") from exc
        if not named:
            raise WalletError("the pending tx's final ark tx is not the tx it names")
        return self._remember(offchain.check_submission(params, answer))

    def _remember(self, submitted: SubmittedTx) -> SubmittedTx:
        self._submitted[submitted.ark_txid] = submitted
        while len(self._submitted) > REMEMBERED:
            del self._submitted[next(iter(self._submitted))]
        return submitted
