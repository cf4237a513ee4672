"""What the lnd and tapd clients share: a TLS connection with a macaroon to one node,
either of a real daemon (``target`` configured) or of a simulator that the client then
owns and serves itself."""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import grpc
import trio

from arkrelay_core.config import HostPort, Secret
from arkrelay_core.errors import ArkRelayError
from arkrelay_core.grpcutil import Caller, CallPolicy, ErrorMapper, open_channel
from arkrelay_core.interfaces import PluginContext

from .errors import answered
from .sim import NodeServers, SimNetwork

__all__ = ["DaemonClient", "NodeSettings"]

log = logging.getLogger(__name__)


class NodeSettings(Protocol):
    target: HostPort | None
    tls_cert: Path | None
    tls_server_name: str | None
    macaroon: Secret | None
    macaroon_path: Path | None


class DaemonClient(abc.ABC):
    """Base of LndBackend and TapdBackend: connection, macaroon, caller, lifecycle.

    Subclasses name their daemon and error mapping, build their simulator over a network
    (``build_simulator``) and their stubs (``connected``). A simulator passed in is served
    by whoever passed it; one built here (no ``target``) is served by ``serve``, over the
    network shared by the gateway's data dir so its lnd and tapd simulators meet.
    """

    daemon = "daemon"
    map_error: ErrorMapper
    unavailable: Callable[[str], ArkRelayError]

    def __init__(
        self,
        settings: CallPolicy,
        context: PluginContext | None = None,
        *,
        simulator: NodeServers | None = None,
        node: str = "gateway",
    ) -> None:
        self.settings = settings
        self.context = context
        self.node = node
        self._owns_simulator = simulator is None and self._node_settings.target is None
        if self._owns_simulator:
            key = str(context.data_dir) if context is not None else None
            simulator = self.build_simulator(SimNetwork.shared(key) if key else SimNetwork())
        self.simulator = simulator
        self.caller = Caller(
            self.daemon,
            settings,
            map_error=type(self).map_error,
            unavailable=type(self).unavailable,
            answered=answered,
            metadata=(("macaroon", self._macaroon()),),
        )

    @abc.abstractmethod
    def build_simulator(self, network: SimNetwork) -> NodeServers: ...

    @property
    def _node_settings(self) -> NodeSettings:
        return self.settings  # type: ignore[return-value]

    @property
    def _simulated(self) -> bool:
        return self.simulator is not None and self._node_settings.target is None

    def _macaroon(self) -> str:
        settings = self._node_settings
        if settings.macaroon is not None:
            return settings.macaroon.reveal()
        if settings.macaroon_path is not None:
            return settings.macaroon_path.read_bytes().hex()
        if self.simulator is not None and self._simulated:
            return self.simulator.macaroon_hex(self.node)
        return ""

    @property
    def target(self) -> str:
        if self._node_settings.target is not None:
            return str(self._node_settings.target)
        assert self.simulator is not None
        return self.simulator.target(self.node)

    def serve_simulator(self) -> Callable[..., Awaitable[None]]:
        """The owned simulator's ``serve`` (bound to its options), for ``nursery.start``."""
        assert self.simulator is not None
        data_dir = self.context.data_dir if self.context is not None else None

        async def run(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            assert self.simulator is not None
            await self.simulator.serve(data_dir=data_dir, task_status=task_status)

        return run

    @abc.abstractmethod
    def connected(self, channel: grpc.Channel) -> None: ...

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect (starting the owned simulator first) and stay connected until cancelled."""
        settings, sim = self._node_settings, self.simulator
        async with trio.open_nursery() as nursery:
            if self._owns_simulator and sim is not None:
                await nursery.start(self.serve_simulator())
            if settings.tls_cert is not None:
                cert: bytes | None = settings.tls_cert.read_bytes()
            elif sim is not None and self._simulated:
                cert = sim.tls.cert_pem
            else:
                cert = None  # the system's roots: a daemon behind a publicly signed proxy
            channel = open_channel(
                self.target, tls=True, root_certificate=cert, server_name=settings.tls_server_name
            )
            self.connected(channel)
            log.info("%s backend using %s", self.daemon, self.target)
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                channel.close()
                nursery.cancel_scope.cancel()

    def connection_statistics(self) -> Mapping[str, Any]:
        return {
            "target": self.target if (self._node_settings.target or self.simulator) else None,
            "simulated": self.simulator is not None,
            **self.caller.statistics(),
        }
