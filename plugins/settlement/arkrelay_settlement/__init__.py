"""ArkRelay's settlement strategies: ``anchor`` (OP_RETURN commitments on a schedule) and
``ark-batches`` (the Ark server's commitment txs)."""

import importlib.metadata

__version__ = importlib.metadata.version("arkrelay-settlement")
__all__ = ["__version__"]
