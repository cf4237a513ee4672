"""What every flow may use: the ports the engine builds once and hands to each flow.

A flow (transfer/split/swap steps, lift, land, plugin payloads, service requests,
batches) takes a :class:`Ports` and, where it starts or ends other sessions' work, a
:class:`Driver`; it never sees the engine nor the other flows. This module imports no
other flow, so the package has no import circle: the engine wires, the flows only use.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import trio

from ..codes import ErrorCode
from ..config import CeremonySettings
from ..errors import BackendUnavailable, ProtocolViolation
from ..identity import ServiceIdentity
from ..interfaces import ArkBackend, IntentTypeSpec, LightningBackend
from ..protocol import SessionState
from .assets import AssetBook
from .db import Store
from .deadlines import Deadlines
from .messages import Messenger
from .peers import Peers
from .records import Transition
from .state import Held

__all__ = [
    "Driver",
    "HasPorts",
    "Ports",
    "Turns",
    "ports_of",
]

log = logging.getLogger(__name__)


class Driver(Protocol):
    """What a flow asks of the session driver: go on with a session, or end it."""

    async def drive(self, session_id: str, held: Held = None, turn: int | None = None) -> None: ...

    async def fail(
        self,
        session_id: str,
        code: ErrorCode,
        message: str,
        *,
        state: SessionState = SessionState.FAILED,
    ) -> None: ...


class Turns:
    """One lock per session a task is changing, and the turn each change took.

    A snapshot a transaction handed over in one turn is what a fresh read would find
    as long as the session's last turn is still that one (:meth:`still`).
    """

    def __init__(self) -> None:
        self._locks: dict[str, trio.Lock] = {}
        self._last: dict[str, int] = {}
        self._count = itertools.count(1)

    def lock(self, session_id: str) -> trio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = trio.Lock()
        return lock

    def forget(self, session_id: str) -> None:
        lock = self._locks.get(session_id)
        if lock is not None and not lock.locked():
            del self._locks[session_id]
            self._last.pop(session_id, None)

    def take(self, session_id: str) -> int:
        """Note that a task is about to change ``session_id`` (holding its lock, or before
        anyone else can know the session); returns the turn, unique in this process."""
        turn = next(self._count)
        self._last[session_id] = turn
        return turn

    def still(self, session_id: str, turn: int) -> bool:
        return self._last.get(session_id) == turn


@dataclasses.dataclass(eq=False)
class Ports:
    settings: CeremonySettings
    network: str
    #: Seconds an event's created_at may be off (``gateway.event_window``).
    event_window: float
    identity: ServiceIdentity
    #: This instance's name in leases and inbound claims.
    instance: str
    store: Store
    messages: Messenger
    peers: Peers
    deadlines: Deadlines
    assets: AssetBook
    ark: ArkBackend | None
    lightning: LightningBackend | None
    #: The plugins' action types by name, and every action's params type.
    intent_types: Mapping[str, IntentTypeSpec]
    params_types: Mapping[str, type]
    turns: Turns
    stats: collections.Counter[str]
    #: The pluggy hook relay, and how an observer hook is called (never raises).
    hook: Any
    notify: Callable[..., None]
    notify_outbox: Callable[[], None]
    #: Runs ``fn(*args)`` as a task of the engine's (its database errors contained).
    spawn: Callable[..., None]

    def run(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """``store.run``: ``fn(db, *args)`` in one transaction."""
        return self.store.run(fn, *args)

    @property
    def ark_backend(self) -> ArkBackend:
        if self.ark is None:
            raise BackendUnavailable("no Ark backend is configured", code=ErrorCode.ARK_UNAVAILABLE)
        return self.ark

    @property
    def lightning_backend(self) -> LightningBackend:
        if self.lightning is None:
            raise ProtocolViolation(
                "this gateway has no Lightning backend", code=ErrorCode.UNSUPPORTED_ACTION
            )
        return self.lightning

    def transitioned(self, transitions: Sequence[Transition]) -> None:
        """After a commit: wake the outbox, note deadlines, tell the observers."""
        self.notify_outbox()
        for t in transitions:
            log.debug("session %s: %s -> %s", t.session_id, t.old, t.new)
            if t.deadline is not None:
                self.deadlines.add(t.session_id, t.deadline)
            if t.old != t.new:
                self.notify(
                    self.hook.arkrelay_session_transition,
                    session=t.view,
                    old=SessionState(t.old),
                    new=SessionState(t.new),
                )

    def handed(self, result: tuple[Sequence[Transition], Held]) -> Held:
        """:meth:`transitioned` for a step's transaction that also handed its session over."""
        transitions, held = result
        self.transitioned(transitions)
        return held


class HasPorts(Protocol):
    @property
    def ports(self) -> Ports: ...


def ports_of(source: Ports | HasPorts) -> Ports:
    """Ports, from themselves or from what holds them (the engine, for callers outside)."""
    return source if isinstance(source, Ports) else source.ports
