"""ArkRelay's Nostr transports: ``relays`` (a pool of external relays) and ``endpoint``
(the gateway itself as a NIP-01 relay wallets connect to)."""

import importlib.metadata

__version__ = importlib.metadata.version("arkrelay-nostr")
__all__ = ["__version__"]
