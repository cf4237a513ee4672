"""Who drives which session: leases, resuming after a restart, taking over a dead instance.

An instance holds a lease on every session it drives and renews them all every third of
the lease time; a session whose lease lapsed is claimed with ``FOR UPDATE SKIP LOCKED``
(so two instances never claim the same one) and resumed: its open challenge is sent again
(the same stored event) and its next piece of work is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session

from ..protocol import SessionState
from ..store.models import CeremonySession
from .ports import Driver, Ports
from .records import FINAL, WAITING, challenge_row, republish

__all__ = ["Leases"]

log = logging.getLogger(__name__)


class Leases:
    def __init__(
        self, ports: Ports, driver: Driver, recover_inbound: Callable[[], Awaitable[None]]
    ) -> None:
        self.ports = ports
        self.driver = driver
        #: Handles again what a stopped instance left unhandled (``Engine.recover_inbound``).
        self.recover_inbound = recover_inbound

    async def resume_all(self) -> None:
        """At start: take back this instance's sessions and any whose lease lapsed."""
        for session_id in await self.ports.run(self._claimable, time.time(), True):
            self.ports.spawn(self.drive_resumed, session_id)

    async def drive_resumed(self, session_id: str) -> None:
        await self.ports.run(self._resend_open_challenge, session_id, time.time())
        self.ports.notify_outbox()
        await self.driver.drive(session_id)

    def _resend_open_challenge(self, db: Session, session_id: str, now: float) -> None:
        row = db.get(CeremonySession, session_id)
        if row is None or row.state in FINAL or SessionState(row.state) not in WAITING:
            return
        current = challenge_row(db, row.id, row.step_index)
        if current is not None and current.signature is None and current.event_id:
            republish(db, [current.event_id], now=now)

    def _claimable(self, db: Session, now: float, own_too: bool) -> list[str]:
        me = self.ports.instance
        lapsed = sa.or_(
            CeremonySession.lease_owner.is_(None),
            CeremonySession.lease_expires_at < int(now),
        )
        if own_too:
            lapsed = sa.or_(lapsed, CeremonySession.lease_owner == me)
        rows = db.scalars(
            sa.select(CeremonySession)
            .where(CeremonySession.state.not_in(FINAL), lapsed)
            .order_by(CeremonySession.created_at)
            .limit(500)
            .with_for_update(skip_locked=True)
        ).all()
        ttl = self.ports.settings.lease_ttl.seconds
        for row in rows:
            row.lease_owner, row.lease_expires_at = me, int(now + ttl)
        return [r.id for r in rows]

    async def keep(self) -> None:
        """Renew this instance's leases; take over sessions whose instance died."""
        ttl = self.ports.settings.lease_ttl.seconds
        while True:
            await trio.sleep(max(1.0, ttl / 3))
            now = time.time()
            await self.ports.run(self._renew, now)
            await self.recover_inbound()
            for session_id in await self.ports.run(self._claimable, now, False):
                log.warning("taking over session %s (its instance stopped renewing)", session_id)
                self.ports.spawn(self.drive_resumed, session_id)

    def _renew(self, db: Session, now: float) -> None:
        # Rows another transaction holds are skipped (renewed next round): waiting for them
        # while holding others could deadlock with a batch's transaction.
        mine = (
            sa.select(CeremonySession.id)
            .where(
                CeremonySession.lease_owner == self.ports.instance,
                CeremonySession.state.not_in(FINAL),
            )
            .with_for_update(skip_locked=True)
        )
        ids = list(db.scalars(mine).all())
        if ids:
            db.execute(
                sa.update(CeremonySession)
                .where(CeremonySession.id.in_(ids))
                .values(lease_expires_at=int(now + self.ports.settings.lease_ttl.seconds))
            )
