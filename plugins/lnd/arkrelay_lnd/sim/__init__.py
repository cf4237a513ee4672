"""A simulated Lightning network: several nodes, each a gRPC server speaking lnd's
Lightning, Invoices, Router and WalletKit services over the pinned protos, with real signed
BOLT11 invoices, hold invoices, payments between nodes, on-chain wallets and blocks mined
on demand, and failure modes per node (no route, stuck payments, offline).

    sim = LndSimulator()          # nodes "gateway" and "outside"
    sim.start_all()
"""

from .network import Failure, InvoiceState, PayStatus, SimError, SimNetwork, SimNode
from .server import LndSimulator, NodeServers
from .state import STATE_FILE, NodeEntry, SimState, read_state

__all__ = [
    "STATE_FILE",
    "Failure",
    "InvoiceState",
    "LndSimulator",
    "NodeEntry",
    "NodeServers",
    "PayStatus",
    "SimError",
    "SimNetwork",
    "SimNode",
    "SimState",
    "read_state",
]
