"""A simulated bitcoin chain with bitcoind's mempool rules, served as Esplora's REST API
by ``arkrelay sim chain`` (docs/simulators.md, "Chain").

    ledger = Ledger(fee_floor=1.0)
    txid, vout = ledger.faucet(script, 100_000)
    ledger.submit(raw_tx)            # Refusal(reason) as bitcoind would refuse it
    ledger.mine(1)
"""

from .errors import Refusal, ScriptFailure
from .ledger import Entry, Ledger
from .outputs import P2A_SCRIPT, address_of, script_of

__all__ = [
    "P2A_SCRIPT",
    "Entry",
    "Ledger",
    "Refusal",
    "ScriptFailure",
    "address_of",
    "script_of",
]
