"""Serving the simulated tapd: its own gRPC server per node (tapd listens apart from lnd,
on 10029), over the same SimNetwork the lnd simulator serves."""

from __future__ import annotations

from arkrelay_lnd.sim import NodeServers, SimNetwork, SimNode

from .ledger import AssetLedger
from .service import servicers

__all__ = ["STATE_FILE", "TapdSimulator"]

#: Written beside the lnd simulator's sim-ln.json (with sim-tapd.cert).
STATE_FILE = "sim-tapd.json"


class TapdSimulator(NodeServers):
    """tapd's services for every node of ``network`` (which the lnd simulator also serves:
    asset invoices are its invoices, and paying them moves asset balances)."""

    daemon = "tapd"
    state_file = STATE_FILE

    def __init__(self, network: SimNetwork, *, host: str = "127.0.0.1") -> None:
        super().__init__(network, host=host)
        self.ledger = AssetLedger(network)

    def servicers(self, node: SimNode) -> list:  # type: ignore[type-arg]
        return servicers(self.ledger, node)

    def macaroon_hex(self, name: str) -> str:
        return self.ledger.macaroons[name].hex()
