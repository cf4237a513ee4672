"""Serving a simulated network: one grpcio server per node, on loopback, with TLS and
macaroon checks as lnd and tapd do them.

The network outlives the servers, so a test can stop a node's server (the node "goes
offline": its streams end, calls fail, it cannot be paid), start it again on the same
port, and find the same invoices and payments.
"""

from __future__ import annotations

import abc
import logging
import os
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import trio

from .network import SimNetwork, SimNode
from .service import servicers
from .state import STATE_FILE, NodeEntry, SimState, remove_state, write_state
from .tls import SelfSigned, self_signed

__all__ = ["LndSimulator", "MacaroonCheck", "NodeServers"]

log = logging.getLogger(__name__)

#: Each open stream holds a worker thread, so leave room for unary calls beside them.
_WORKERS = 32

Servicers = list[tuple[Callable[..., None], Any]]


class MacaroonCheck(grpc.ServerInterceptor):
    """Refuses calls without the node's macaroon, as lnd does (code Unknown there)."""

    def __init__(self, macaroon_hex: str) -> None:
        self._macaroon = macaroon_hex

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        handler = continuation(handler_call_details)
        sent = [v for k, v in handler_call_details.invocation_metadata or () if k == "macaroon"]
        if handler is None or sent == [self._macaroon]:
            return handler
        message = "expected 1 macaroon, got 0" if not sent else "verification failed"

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNKNOWN, message)

        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(deny, **kwargs)
        return grpc.unary_unary_rpc_method_handler(deny, **kwargs)


class NodeServers(abc.ABC):
    """One daemon's gRPC servers for the nodes of a network. Subclasses say which
    services (``servicers``), which macaroon (``macaroon_hex``) and which state file."""

    daemon = "daemon"
    state_file = STATE_FILE

    def __init__(self, network: SimNetwork, *, host: str = "127.0.0.1") -> None:
        self.network = network
        self.host = host
        self.tls: SelfSigned = self_signed()
        self.ports: dict[str, int] = {}
        self._servers: dict[str, grpc.Server] = {}
        self._state_dir: Path | None = None

    @abc.abstractmethod
    def servicers(self, node: SimNode) -> Servicers: ...

    @abc.abstractmethod
    def macaroon_hex(self, name: str) -> str: ...

    def node(self, name: str) -> SimNode:
        return self.network.nodes[name]

    def target(self, name: str) -> str:
        if name not in self.ports:
            raise RuntimeError(f"node {name!r} has never been started")
        return f"{self.host}:{self.ports[name]}"

    def running(self, name: str) -> bool:
        return name in self._servers

    def start(self, name: str, port: int | None = None) -> int:
        """Serve ``name`` (on ``port``, its previous port, or a free one)."""
        if name in self._servers:
            raise RuntimeError(f"{self.daemon} node {name!r} is already running")
        node = self.network.nodes[name]
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=_WORKERS),
            interceptors=[MacaroonCheck(self.macaroon_hex(name))],
        )
        for add, servicer in self.servicers(node):
            add(servicer, server)
        wanted = port if port is not None else self.ports.get(name, 0)
        credentials = grpc.ssl_server_credentials([(self.tls.key_pem, self.tls.cert_pem)])
        bound = server.add_secure_port(f"{self.host}:{wanted}", credentials)
        if bound == 0:
            raise OSError(f"cannot listen on {self.host}:{wanted}")
        server.start()
        self._servers[name], self.ports[name] = server, bound
        self.started(node)
        log.info("%s simulator node %s on %s:%d", self.daemon, name, self.host, bound)
        return bound

    def stop(self, name: str, grace: float | None = None) -> None:
        """Stop serving ``name``: its streams end and its port refuses connections."""
        server = self._servers.pop(name, None)
        if server is None:
            return
        self.stopping(self.network.nodes[name])
        server.stop(grace).wait()
        log.info("%s simulator node %s stopped", self.daemon, name)

    def started(self, node: SimNode) -> None:  # noqa: B027 - an optional hook
        """Hook: ``node``'s server is up."""

    def stopping(self, node: SimNode) -> None:  # noqa: B027 - an optional hook
        """Hook: ``node``'s server is about to stop."""

    def start_all(self, ports: dict[str, int] | None = None) -> dict[str, int]:
        for name in self.network.nodes:
            if name not in self._servers:
                self.start(name, (ports or {}).get(name))
        return dict(self.ports)

    def stop_all(self) -> None:
        for name in list(self._servers):
            self.stop(name)
        if self._state_dir is not None:
            remove_state(self._state_dir, os.getpid(), file=self.state_file)
            self._state_dir = None

    def state(self) -> SimState:
        return SimState(
            network=self.network.network,
            tls_cert=self.tls.cert_pem.decode(),
            pid=os.getpid(),
            nodes={
                name: NodeEntry(self.target(name), node.pubkey, self.macaroon_hex(name))
                for name, node in self.network.nodes.items()
                if name in self.ports
            },
        )

    def write_state(self, data_dir: Path) -> Path:
        """Publish the state file (removed again by ``stop_all``)."""
        self._state_dir = data_dir
        return write_state(data_dir, self.state(), file=self.state_file)

    async def serve(
        self,
        *,
        data_dir: Path | None = None,
        block_interval: float | None = None,
        task_status: trio.TaskStatus[dict[str, int]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve every node until cancelled; write the state file into ``data_dir``; mine
        a block every ``block_interval`` seconds."""
        ports = self.start_all()
        try:
            if data_dir is not None:
                self.write_state(data_dir)
            task_status.started(ports)
            while True:
                if block_interval is None:
                    await trio.sleep_forever()
                await trio.sleep(block_interval)
                self.network.mine()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.stop_all)


class LndSimulator(NodeServers):
    """lnd's services for every node of a SimNetwork; ``gateway`` and ``outside`` exist by
    default (the gateway's own node and the rest of the world)."""

    daemon = "lnd"

    def __init__(
        self,
        network: SimNetwork | None = None,
        *,
        host: str = "127.0.0.1",
        nodes: tuple[str, ...] = ("gateway", "outside"),
    ) -> None:
        super().__init__(network or SimNetwork(), host=host)
        for name in nodes:
            if name not in self.network.nodes:
                self.network.add_node(name)

    def servicers(self, node: SimNode) -> Servicers:
        return servicers(self.network, node)

    def macaroon_hex(self, name: str) -> str:
        return self.network.nodes[name].macaroon_hex

    def started(self, node: SimNode) -> None:
        node.online = True

    def stopping(self, node: SimNode) -> None:
        node.online = False
        self.network.close_streams(node)
