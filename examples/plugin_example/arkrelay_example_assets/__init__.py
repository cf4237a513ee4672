"""An example third-party ArkRelay asset backend (``example-assets``): an in-memory asset
issuer with its own chain, issuance proofs and a block clock."""

import importlib.metadata

__version__ = importlib.metadata.version("arkrelay-example-assets")
__all__ = ["__version__"]
