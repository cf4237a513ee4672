"""An in-process arkd: ArkService and IndexerService over the pinned protos, backed by an
in-memory VTXO set with arkd's transaction rules (real PSBTs, BIP341 sighashes, BIP340
signatures, arkd's error codes). Start it with ``ArkdSimulator().start(0)`` or
``python -m arkrelay_arkd.sim --port N``."""

from .errors import ArkdError
from .ledger import Ledger, SimTxEvent, SimVtxo
from .server import ArkdSimulator

__all__ = ["ArkdError", "ArkdSimulator", "Ledger", "SimTxEvent", "SimVtxo"]
