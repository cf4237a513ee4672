"""ArkRelay's Lightning backend: a gRPC client for lnd (``lnd``) and a simulated network."""

import importlib.metadata

__version__ = importlib.metadata.version("arkrelay-lnd")
__all__ = ["__version__"]
