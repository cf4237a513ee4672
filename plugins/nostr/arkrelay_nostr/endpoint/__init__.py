"""The ``endpoint`` transport: the gateway as a NIP-01 relay (NIP-11, NIP-40, NIP-42).

Modules: ``transport`` (the Transport), ``server`` (ASGI app on hypercorn),
``connection`` (one client's session), ``frames`` (wire messages), ``filters``,
``store`` (SQLite), ``kinds``, ``auth`` (NIP-42 and private kinds), ``limits``, ``nip11``.
"""

from .transport import STORE_FILE, EndpointTransport

__all__ = ["STORE_FILE", "EndpointTransport"]
