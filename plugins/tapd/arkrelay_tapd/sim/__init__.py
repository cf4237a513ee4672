"""A simulated tapd over arkrelay_lnd's simulated Lightning network: TaprootAssets, Mint,
TaprootAssetChannels and Universe over the pinned protos; minting in batches anchored by
real wallet transactions, balances, asset invoices payable by any node of the network, and
signed issuance proofs (the simulator's own format)."""

from .ledger import MSAT_PER_UNIT, AssetLedger, SimAsset
from .server import STATE_FILE, TapdSimulator

__all__ = ["MSAT_PER_UNIT", "STATE_FILE", "AssetLedger", "SimAsset", "TapdSimulator"]
