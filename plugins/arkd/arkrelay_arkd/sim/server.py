"""Running the simulator: a grpcio server on loopback around one Ledger, and beside it
arkd's REST interface (hypercorn on trio) over the same servicers.

arkd serves gRPC and REST on one port (7070); grpcio cannot share its port with an HTTP/1
server, so the simulator listens on two. The ledger outlives the servers, so a test can
stop the gRPC server (the daemon "goes down"), start it again on the same port, and find
the same VTXOs.
"""

from __future__ import annotations

import functools
import logging
from concurrent import futures
from typing import Any

import grpc
import hypercorn.trio
import trio
from hypercorn.config import Config as HypercornConfig

from .._proto.ark.v1 import indexer_pb2_grpc, service_pb2_grpc
from ..tapscript import default_vtxo_tree
from .batch import BatchConfig, BatchEngine
from .esplora import Chain
from .indexer import SimIndexerServicer
from .ledger import Ledger, SimVtxo
from .rest import RestApp
from .service import ArkServicer

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
        self.rest_port: int | None = None
        self._server: grpc.Server | None = None
        # One servicer pair for both interfaces: REST and gRPC see the same ledger and
        # the same per-servicer state (subscriptions).
        self.servicers: dict[str, Any] = {
            "ArkService": ArkServicer(self.ledger, self.batches),
            "IndexerService": SimIndexerServicer(self.ledger),
        }

    @property
    def target(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator is not running")
        return f"{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """arkd's REST base URL on this simulator (what wallets and the SDK are given)."""
        if self.rest_port is None:
            raise RuntimeError("the simulator's REST interface is not running")
        return f"http://{self.host}:{self.rest_port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, port: int | None = None) -> int:
        """Start serving (on ``port``, the previous port, or a free one); returns the port."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=_WORKERS))
        service_pb2_grpc.add_ArkServiceServicer_to_server(self.servicers["ArkService"], server)
        indexer_pb2_grpc.add_IndexerServiceServicer_to_server(
            self.servicers["IndexerService"], server
        )
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
        rest_port: int | None = None,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve gRPC (and REST, when ``rest_port`` is given; 0 picks a free port) until
        cancelled (trio's start protocol; reports the gRPC port)."""
        bound = self.start(port)
        try:
            async with trio.open_nursery() as nursery:
                if rest_port is not None:
                    await nursery.start(self.serve_rest, rest_port)
                task_status.started(bound)
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.stop)

    async def serve_rest(
        self, port: int = 0, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve arkd's REST interface on ``host:port`` until cancelled; reports its URL."""
        config = HypercornConfig()
        config.bind = [f"{self.host}:{port}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("arkrelay_arkd.sim.rest")
        config.graceful_timeout = 1.0
        # The request line and headers: GetVtxos takes its scripts in the query string,
        # 68 characters each, and a wallet may ask for many at once.
        config.h11_max_incomplete_size = 256 * 1024
        serve = functools.partial(hypercorn.trio.serve, RestApp(self.servicers), config)
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(serve)
            self.rest_port = int(binds[0].rsplit(":", 1)[1])
            log.info("arkd simulator REST interface on %s", self.rest_url)
            try:
                task_status.started(self.rest_url)
                await trio.sleep_forever()
            finally:
                self.rest_port = None

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
