"""The ``relays`` transport: subscribe to and publish through a pool of external relays."""

from .pool import RelayPoolTransport

__all__ = ["RelayPoolTransport"]
