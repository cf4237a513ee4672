"""Bounded update streams from the simulated network to its gRPC servicers."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import SimInvoice, SimPayment

__all__ = ["QUEUE_SIZE", "Subscription", "close", "drain", "publish"]

log = logging.getLogger(__name__)

#: Updates a stream may fall behind by before the simulator drops it (as lnd does with a
#: slow subscriber, the client then reconnects and catches up by index).
QUEUE_SIZE = 1024


@dataclasses.dataclass
class Subscription:
    updates: queue.Queue[SimInvoice | SimPayment | None] = dataclasses.field(
        default_factory=lambda: queue.Queue(QUEUE_SIZE)
    )
    closed: bool = False


def publish(streams: list[Subscription], snapshot: Callable[[], SimInvoice | SimPayment]) -> None:
    for subscription in list(streams):
        try:
            subscription.updates.put_nowait(snapshot())
        except queue.Full:
            log.warning("sim: dropping a stream that fell %d updates behind", QUEUE_SIZE)
            streams.remove(subscription)
            close(subscription)


def close(subscription: Subscription) -> None:
    subscription.closed = True
    with contextlib.suppress(queue.Full):
        subscription.updates.put_nowait(None)


def drain(subscription: Subscription, timeout: float) -> Iterator[SimInvoice | SimPayment | None]:
    """Updates as they come; ``None`` after ``timeout`` idle seconds (a heartbeat chance),
    until the subscription is closed."""
    while True:
        try:
            item = subscription.updates.get(timeout=timeout)
        except queue.Empty:
            if subscription.closed:
                return
            yield None
            continue
        if item is None:
            return
        yield item
