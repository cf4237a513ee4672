"""What every gRPC daemon plugin needs, with no daemon knowledge: a channel, unary calls
with deadline, retries and a circuit breaker, and server streams read into trio.

Plugins import this; the core never does, and it is the only place in ``arkrelay_core``
that imports grpcio (a dependency of the plugins that use it, not of the core).
"""

from .breaker import CircuitBreaker
from .calls import Backoff, Caller, CallPolicy, ErrorMapper, is_transient, was_answered
from .channel import open_channel
from .stream import pump

__all__ = [
    "Backoff",
    "CallPolicy",
    "Caller",
    "CircuitBreaker",
    "ErrorMapper",
    "is_transient",
    "open_channel",
    "pump",
    "was_answered",
]
