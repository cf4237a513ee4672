"""ArkRelay's asset backend: a gRPC client for tapd (``tapd``) and a tapd simulator."""

import importlib.metadata

__version__ = importlib.metadata.version("arkrelay-tapd")
__all__ = ["__version__"]
