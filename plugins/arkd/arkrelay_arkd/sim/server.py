"""Running the simulator: a grpcio server on loopback around one Ledger.

The ledger outlives the server, so a test can stop the server (the daemon "goes down"),
start it again on the same port, and find the same VTXOs.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
import trio

from .._proto.ark.v1 import indexer_pb2_grpc, service_pb2_grpc
from ..tapscript import default_vtxo_tree
from .batch import BatchConfig, BatchEngine
from .esplora import Chain
from .ledger import Ledger, SimVtxo
from .service import ArkServicer, IndexerServicer

__all__ = ["ArkdSimulator"]

log = logging.getLogger(__name__)

#: Each open stream holds a worker thread, so leave room for unary calls beside them.
_WORKERS = 32


class ArkdSimulator:
    """arkd's public API (ArkService + IndexerService) served from an in-memory ledger."""

    def __init__(
        self,
        ledger: Ledger | None = None,
        *,
        host: str = "127.0.0.1",
        chain: Chain | None = None,
        batch_config: BatchConfig | None = None,
    ) -> None:
        self.ledger = ledger or Ledger()
        self.host = host
        #: Without a chain the batch RPCs answer, but no batch can be funded or broadcast.
        self.batches = BatchEngine(self.ledger, chain, batch_config)
        self.port: int | None = None
        self._server: grpc.Server | None = None

    @property
    def target(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator is not running")
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, port: int | None = None) -> int:
        """Start serving (on ``port``, the previous port, or a free one); returns the port."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=_WORKERS))
        service_pb2_grpc.add_ArkServiceServicer_to_server(
            ArkServicer(self.ledger, self.batches), server
        )
        indexer_pb2_grpc.add_IndexerServiceServicer_to_server(IndexerServicer(self.ledger), server)
        wanted = self.port if port is None and self.port is not None else (port or 0)
        bound = server.add_insecure_port(f"{self.host}:{wanted}")
        if bound == 0:
            raise OSError(f"cannot listen on {self.host}:{wanted}")
        server.start()
        self.batches.start()
        self._server, self.port = server, bound
        log.info("arkd simulator listening on %s:%d", self.host, bound)
        return bound

    def stop(self, grace: float | None = None) -> None:
        """Stop serving; open streams end. The ledger is kept."""
        server, self._server = self._server, None
        if server is None:
            return
        self.ledger.close_subscribers()
        self.batches.stop()
        server.stop(grace).wait()
        log.info("arkd simulator on port %s stopped", self.port)

    async def serve(
        self,
        *,
        port: int | None = None,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled (trio's start protocol; reports the port)."""
        bound = self.start(port)
        try:
            task_status.started(bound)
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.stop)

    # ------------------------------------------------------------------ test and demo controls

    def board(self, owner: str, amount: int, *, expires_at: int | None = None) -> SimVtxo:
        """Give ``owner`` (x-only hex) a new VTXO of ``amount`` sats."""
        return self.ledger.board(bytes.fromhex(owner), amount, expires_at=expires_at)

    def mine_batch(self) -> str | None:
        """Settle the preconfirmed VTXOs in a new commitment tx; returns its txid."""
        return self.ledger.mine_batch()

    def expire(self, vtxo_id: str) -> None:
        """Make a VTXO expired (recoverable), as if its batch's expiry had passed."""
        self.ledger.expire(vtxo_id)

    def script_of(self, owner: str) -> str:
        """The hex pkScript of ``owner``'s default VTXO script on this server."""
        ledger = self.ledger
        tree = default_vtxo_tree(
            bytes.fromhex(owner), ledger.signer_xonly, ledger.unilateral_exit_delay
        )
        return tree.pk_script.hex()
