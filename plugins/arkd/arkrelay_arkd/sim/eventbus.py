"""GetEventStream's listeners: each with its topics and a bounded queue (arkd's broker).

An event with topics reaches the listeners that hold one of them; an event without topics
reaches every listener (grpc/handlers/broker.go ``includesAny``). Topics are compared
lower-cased and trimmed. A listener that falls behind is dropped: its stream ends.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import uuid
from collections.abc import Iterable, Sequence

__all__ = ["EventBus", "Listener"]

log = logging.getLogger(__name__)

LISTENER_QUEUE = 1024


def _topic(text: str) -> str:
    return text.strip().lower()


@dataclasses.dataclass
class Listener:
    id: str
    topics: set[str]
    events: queue.Queue[object | None]


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, Listener] = {}

    def listen(self, topics: Iterable[str]) -> Listener:
        listener = Listener(
            str(uuid.uuid4()), {_topic(t) for t in topics}, queue.Queue(LISTENER_QUEUE)
        )
        with self._lock:
            self._listeners[listener.id] = listener
        return listener

    def remove(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.pop(listener.id, None)

    def close_all(self) -> None:
        with self._lock:
            for listener in self._listeners.values():
                _offer(listener, None)
            self._listeners.clear()

    def topics(self, listener_id: str) -> list[str]:
        with self._lock:
            return sorted(self._get(listener_id).topics)

    def modify(self, listener_id: str, add: Sequence[str], remove: Sequence[str]) -> list[str]:
        with self._lock:
            listener = self._get(listener_id)
            listener.topics |= {_topic(t) for t in add}
            listener.topics -= {_topic(t) for t in remove}
            return sorted(listener.topics)

    def overwrite(self, listener_id: str, topics: Sequence[str]) -> list[str]:
        with self._lock:
            listener = self._get(listener_id)
            listener.topics = {_topic(t) for t in topics}
            return sorted(listener.topics)

    def _get(self, listener_id: str) -> Listener:
        listener = self._listeners.get(listener_id)
        if listener is None:
            raise KeyError(f"subscription {listener_id} not found")
        return listener

    def publish(self, events: Sequence[tuple[object, Sequence[str]]]) -> None:
        """Send (event, topics) pairs in order to every listener they concern."""
        with self._lock:
            for listener in list(self._listeners.values()):
                for event, topics in events:
                    wanted = not topics or any(_topic(t) in listener.topics for t in topics)
                    if wanted and not _offer(listener, event):
                        log.warning("sim: dropping an event-stream listener that fell behind")
                        del self._listeners[listener.id]
                        _offer(listener, None)
                        break


def _offer(listener: Listener, item: object | None) -> bool:
    try:
        listener.events.put_nowait(item)
    except queue.Full:
        if item is None:
            # Make room for the end marker: the listener is being dropped anyway.
            try:
                listener.events.get_nowait()
                listener.events.put_nowait(None)
            except (queue.Empty, queue.Full):
                pass
        return False
    return True
