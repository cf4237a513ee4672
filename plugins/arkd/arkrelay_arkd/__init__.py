"""ArkRelay's Ark backend: a gRPC client for arkd (``arkd``) and an arkd simulator."""

import importlib.metadata

__version__ = importlib.metadata.version("arkrelay-arkd")
__all__ = ["__version__"]
