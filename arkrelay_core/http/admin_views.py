"""``/admin/*``: what an operator needs to see and the few things an operator may do.

Every route needs the admin key (admin.py checks it and audits the request). Handlers here
read the running gateway; the two that act (cancel a session, replenish the inventory)
go through the engine and the backend, never around them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import sqlalchemy as sa
import trio
from sqlalchemy.orm import Session

from ..ceremony.records import FINAL, lock_session
from ..ceremony.steps import fail_in
from ..ceremony.submitted import is_submitted
from ..codes import ErrorCode
from ..errors import ArkRelayError
from ..interfaces import Inventory, InventoryKeeper
from ..nostr import encode_npub
from ..protocol import SessionState
from ..servicekey import KeyFileError, read_key_file
from ..store.models import CeremonySession, OutboxEvent
from . import admin
from .admin_models import (
    BreakerOut,
    CancelOut,
    ComponentOut,
    InventoryLevels,
    InventoryOut,
    KeyOut,
    KeysOut,
    LoadFailureOut,
    OutboxItem,
    OutboxOut,
    PluginOut,
    PluginsOut,
    RelaysOut,
    ReplenishOut,
    SessionPage,
    SettlementTriggered,
    TransportOut,
)
from .context import ApiContext
from .errors import HttpError, bad_request, not_found
from .models import SessionOut
from .routes import Api, Handler, Param, Route
from .views import (
    CURSOR,
    LIMIT,
    PUBKEY_PATTERN,
    next_cursor,
    page_params,
    pubkey_of,
    session_out,
)

__all__ = ["api"]

api = Api()

#: States from which a session may be cancelled: it waits for its wallet, or has not yet
#: asked it anything. Later, money is moving at the Ark server or over Lightning, and a
#: 31341 could tell the wallet "failed" about a payment that lands.
CANCELLABLE = frozenset(
    {
        SessionState.INTENT_RECEIVED,
        SessionState.ARK_TX_PREPARED,
        SessionState.CHECKPOINT_TXS_PREPARED,
    }
)
#: Pending outbox events listed by ``/admin/outbox``, oldest first.
OUTBOX_SHOWN = 20
MAX_REASON = 200

SESSION_ID = Param(
    "session_id", "`sess_` and 24 hex characters", example="sess_0123456789abcdef01234567"
)


def _admin(
    method: str,
    path: str,
    response: Any,
    *,
    summary: str,
    params: tuple[Param, ...] = (),
    errors: tuple[int, ...] = (),
) -> Callable[[Handler], Handler]:
    """Register an admin route whose refusals and failures are audited too.

    The app audits the key check and a successful answer; an error the handler raises
    (404, 409, a crash) ends the request before that, so it is audited here.
    """

    def register(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def audited(ctx: ApiContext, **kwargs: Any) -> Any:
            try:
                return await handler(ctx, **kwargs)
            except HttpError as exc:
                admin.audit(ctx, route, "allowed", exc.status)
                raise
            # Audited whatever the handler raised, then raised on unchanged: the app's
            # error handler turns it into the JSON 500.
            except Exception:
                admin.audit(ctx, route, "allowed", 500)
                raise

        route = Route(
            method,
            path,
            audited,
            response,
            summary=summary,
            tag="admin",
            params=params,
            errors=tuple(sorted({401, *errors})),
            admin=True,
        )
        api.routes.append(route)
        return handler

    return register


def _unavailable(exc: ArkRelayError) -> HttpError:
    return HttpError(503, str(exc), code=int(exc.code))


def _plain(stats: Mapping[str, Any]) -> dict[str, Any]:
    """A plugin's statistics as JSON values, whatever types it used for them."""

    def convert(value: Any) -> Any:
        if isinstance(value, Mapping):
            return dict(value)
        return str(value)

    return msgspec.to_builtins(dict(stats), enc_hook=convert)


# -- plugins and relays ---------------------------------------------------------------------


def _instances(ctx: ApiContext) -> list[tuple[str, str, str, Any]]:
    """(component name, plugin name, role, instance) of every enabled plugin instance."""
    config, components = ctx.gateway.config, ctx.gateway.components
    found = [
        (f"transport.{name}", config.transports[name].plugin, "transport", instance)
        for name, instance in components.transports.items()
    ]
    found += [
        (f"backend.{role}", config.backends[role].plugin, role, instance)
        for role, instance in components.backends.items()
    ]
    if components.settlement is not None and config.settlement is not None:
        found.append(("settlement", config.settlement.plugin, "settlement", components.settlement))
    return found


def _breaker(stats: Mapping[str, Any]) -> BreakerOut | None:
    try:
        return msgspec.convert(stats.get("breaker"), BreakerOut)
    except msgspec.ValidationError:
        return None  # no breaker, or one this API does not know how to read


@_admin(
    "GET",
    "/admin/plugins",
    PluginsOut,
    summary="Installed plugins, and each enabled instance's statistics and breaker",
)
async def admin_plugins(ctx: ApiContext) -> PluginsOut:
    registry = ctx.gateway.registry
    instances = _instances(ctx)
    where: dict[tuple[str, str], list[str]] = {}
    components = []
    for name, plugin, role, instance in instances:
        where.setdefault((role, plugin), []).append(name)
        stats = _plain(instance.statistics())
        components.append(ComponentOut(name, plugin, role, _breaker(stats), stats))
    plugins = [
        PluginOut(
            name=p.spec.name,
            role=p.spec.role,
            distribution=p.distribution,
            version=p.distribution_version,
            description=p.spec.description,
            enabled=(p.spec.role, p.spec.name) in where,
            instances=where.get((p.spec.role, p.spec.name), []),
        )
        for p in registry.installed
    ]
    failures = [
        LoadFailureOut(f.entry_point, f.distribution, f.version, f.error) for f in registry.failures
    ]
    return PluginsOut(plugins, components, failures)


@_admin(
    "GET",
    "/admin/relays",
    RelaysOut,
    summary="Transport statistics: relays, connections, events in and out",
)
async def admin_relays(ctx: ApiContext) -> RelaysOut:
    gateway = ctx.gateway
    stats = gateway.statistics()
    transports = [
        TransportOut(name, gateway.config.transports[name].plugin, _plain(t.statistics()))
        for name, t in gateway.components.transports.items()
    ]
    return RelaysOut(
        inbound=stats["inbound"],
        duplicates=stats["duplicates"],
        transport_restarts=stats["transport_restarts"],
        transports=transports,
    )


# -- sessions -------------------------------------------------------------------------------


def _state_filter(state: str) -> Any:
    if state == "open":
        return CeremonySession.state.not_in(FINAL)
    try:
        return CeremonySession.state == str(SessionState(state))
    except ValueError:
        names = ", ".join(["open", *SessionState])
        raise bad_request(f"state must be one of {names}") from None


def _session_cursor(after: str) -> tuple[int, str]:
    created, _, session_id = after.partition(":")
    if not created.isdigit() or not session_id:
        raise bad_request("cursor is not one this API gave out")
    return int(created), session_id


@_admin(
    "GET",
    "/admin/sessions",
    SessionPage,
    summary="Signing sessions, newest first, filtered by state, type and author",
    params=(
        Param(
            "state",
            "a session state (intent_received, ark_tx_prepared, checkpoint_txs_prepared, "
            "signatures_collected, ark_executed, completed, failed, expired, cancelled), "
            "or `open` for every state that is not final",
            where="query",
            required=False,
        ),
        Param("type", "an intent type, such as ark:transfer", where="query", required=False),
        Param(
            "author",
            "the intent author's public key: hex or npub",
            where="query",
            required=False,
            pattern=PUBKEY_PATTERN,
        ),
        LIMIT,
        CURSOR,
    ),
    errors=(400,),
)
async def admin_sessions(
    ctx: ApiContext,
    state: str | None,
    type: str | None,
    author: str | None,
    limit: str | None,
    cursor: str | None,
) -> SessionPage:
    size, after = page_params(ctx, limit, cursor)
    query = sa.select(CeremonySession)
    if state is not None:
        query = query.where(_state_filter(state))
    if type is not None:
        query = query.where(CeremonySession.type == type)
    if author is not None:
        query = query.where(CeremonySession.author == pubkey_of(author))
    if after is not None:
        created, session_id = _session_cursor(after)
        query = query.where(
            sa.or_(
                CeremonySession.created_at < created,
                sa.and_(CeremonySession.created_at == created, CeremonySession.id < session_id),
            )
        )
    query = query.order_by(CeremonySession.created_at.desc(), CeremonySession.id.desc())

    def page(db: Session) -> list[SessionOut]:
        return [session_out(row) for row in db.scalars(query.limit(size + 1))]

    rows = await ctx.db(page)
    chunk = rows[:size]
    last = chunk[-1] if len(rows) > size else None
    return SessionPage(
        items=chunk,
        next_cursor=next_cursor(f"{last.created_at}:{last.session_id}") if last else None,
    )


@_admin(
    "POST",
    "/admin/sessions/{session_id}/cancel",
    CancelOut,
    summary="Cancel a session that waits for its wallet; its author gets a 31341 with 3004",
    params=(
        SESSION_ID,
        Param(
            "reason",
            f"a sentence for the wallet's user (at most {MAX_REASON} characters)",
            where="query",
            required=False,
        ),
    ),
    errors=(400, 404, 409),
)
async def admin_cancel_session(ctx: ApiContext, session_id: str, reason: str | None) -> CancelOut:
    """Ends the session in state ``cancelled`` with one 31341 (code 3004) to its author;
    other open legs of its batch end with 3005. Refused (409) once the session is final,
    or once its signed transaction is being executed: from then on, money may move."""
    if reason is not None and len(reason) > MAX_REASON:
        raise bad_request(f"reason must be at most {MAX_REASON} characters")
    message = "cancelled by the gateway operator" + (f": {reason}" if reason else "")
    engine = ctx.gateway.engine

    def cancel(db: Session) -> tuple[str, Any]:
        row = lock_session(db, session_id)
        if row is None:
            return "missing", None
        state = SessionState(row.state)
        if state in FINAL:
            return "final", state
        if state not in CANCELLABLE or row.context.get("phase"):
            return "busy", state
        if is_submitted(row):  # the wallet's inputs are locked by it: hand it over
            transitions = engine.driver.submitted.end_pending(
                db,
                row,
                time.time(),
                message,
                code=ErrorCode.SESSION_CANCELLED,
                state=SessionState.CANCELLED,
            )
            return "cancelled", (transitions, session_out(row))
        transitions = fail_in(
            engine.ports,
            db,
            row,
            ErrorCode.SESSION_CANCELLED,
            message,
            time.time(),
            state=SessionState.CANCELLED,
        )
        return "cancelled", (transitions, session_out(row))

    outcome, found = await ctx.db(cancel)
    if outcome == "missing":
        raise not_found(f"no session {session_id}")
    if outcome == "final":
        raise HttpError(409, f"session {session_id} is already {found}")
    if outcome == "busy":
        raise HttpError(
            409,
            f"session {session_id} is {found} and its transaction is being executed; "
            "it ends by itself (completed or failed) and cannot be cancelled now",
        )
    transitions, session = found
    engine.transitioned(transitions)
    return CancelOut(session, [t.session_id for t in transitions[1:]])


# -- settlement -----------------------------------------------------------------------------


@_admin(
    "POST",
    "/admin/settlements/trigger",
    SettlementTriggered,
    summary="Close the current settlement period now (needs a settlement strategy)",
    errors=(409, 503),
)
async def admin_trigger_settlement(ctx: ApiContext) -> SettlementTriggered:
    strategy = ctx.gateway.components.settlement
    if strategy is None:
        raise HttpError(
            409,
            "no settlement strategy is configured ([settlement] plugin = ...): this gateway "
            "does not settle to L1, so there is nothing to trigger",
        )
    try:
        settlement_id = await strategy.settle_now()
    except ArkRelayError as exc:
        raise _unavailable(exc) from exc
    except RuntimeError as exc:
        # Not the leader, or a strategy with no period of its own (ark-batches).
        raise HttpError(409, str(exc)) from exc
    if settlement_id is None:
        return SettlementTriggered(None, "the current period holds nothing to settle")
    return SettlementTriggered(settlement_id, f"settlement {settlement_id} started")


# -- inventory ------------------------------------------------------------------------------


def _inventory(ctx: ApiContext) -> Inventory:
    backend = ctx.gateway.components.backends.get("ark")
    inventory = backend.inventory if isinstance(backend, InventoryKeeper) else None
    if inventory is None:
        raise not_found("the ark backend keeps no inventory of the gateway's own VTXOs")
    return inventory


def _inventory_out(inventory: Inventory) -> InventoryOut:
    view = inventory.view()
    levels = view.levels
    ago = None
    if view.refreshed_at is not None:
        # The inventory stamps reads with trio's clock, which means nothing to a client.
        ago = round(trio.current_time() - view.refreshed_at, 3)
    return InventoryOut(
        owner=view.owner,
        balance=view.balance,
        vtxo_count=view.vtxo_count,
        level=view.level,
        levels=InventoryLevels(
            levels.critical, levels.warning, levels.target, levels.check_every.seconds
        ),
        vtxos=list(view.vtxos),
        refreshed_seconds_ago=ago,
        alerts=view.alerts,
        replenished=view.replenished,
        sends=view.sends,
    )


@_admin(
    "GET",
    "/admin/inventory",
    InventoryOut,
    summary="The gateway's own VTXOs (Lightning lift liquidity) against their levels",
    params=(
        Param(
            "refresh",
            "`true` to read the VTXOs from the Ark server first (else the last reading)",
            where="query",
            required=False,
            pattern="^(true|false)$",
        ),
    ),
    errors=(400, 404, 503),
)
async def admin_inventory(ctx: ApiContext, refresh: str | None) -> InventoryOut:
    inventory = _inventory(ctx)
    if refresh not in (None, "true", "false"):
        raise bad_request("refresh must be true or false")
    if refresh == "true":
        try:
            await inventory.refresh()
        except ArkRelayError as exc:
            raise _unavailable(exc) from exc
    return _inventory_out(inventory)


@_admin(
    "POST",
    "/admin/inventory/replenish",
    ReplenishOut,
    summary="Check the inventory now and top it up to its target when below warning",
    errors=(404, 409, 503),
)
async def admin_replenish(ctx: ApiContext) -> ReplenishOut:
    """Reads the inventory and, below its warning level, tops it up to the target through
    the backend (the simulator boards on request). A real arkd cannot board on request:
    below warning there, the answer is 409 and the operator boards on-chain funds."""
    inventory = _inventory(ctx)
    try:
        await inventory.refresh()
        before = (inventory.balance, inventory.level, inventory.replenished)
        level = await inventory.check()
    except ArkRelayError as exc:
        raise _unavailable(exc) from exc
    balance, level_before, count = before
    out = _inventory_out(inventory)
    if inventory.replenished > count:
        detail = f"topped up from {balance} sats towards the target of {out.levels.target}"
        return ReplenishOut(True, balance, level_before, detail, out)
    if level == "ok":
        detail = "the balance is at or above the warning level: nothing to do"
        return ReplenishOut(False, balance, level_before, detail, out)
    raise HttpError(
        409,
        f"the inventory is {level} ({out.balance} sats) and this ark backend cannot board "
        "funds on request: board on-chain funds to the service key (see the arkd plugin's "
        "README)",
    )


# -- keys and outbox ------------------------------------------------------------------------


@_admin(
    "GET",
    "/admin/keys",
    KeysOut,
    summary="Service keys: the current one, rotated-out ones still listened on (no secrets)",
    errors=(503,),
)
async def admin_keys(ctx: ApiContext) -> KeysOut:
    gateway = ctx.gateway
    identity = gateway.identity
    path = gateway.config.gateway.key_file
    try:
        key_file = await trio.to_thread.run_sync(read_key_file, path)
    except KeyFileError as exc:
        raise HttpError(503, f"cannot read the key file: {exc}") from None
    now = time.time()
    listening = set(identity.listening_pubkeys())
    keys = [
        KeyOut(
            pubkey=entry.pubkey,
            npub=encode_npub(entry.pubkey),
            state=str(entry.info.state(now)),
            created_at=entry.created_at,
            retire_at=entry.retire_at,
            signing=entry.pubkey == identity.pubkey,
            listening=entry.pubkey in listening,
        )
        for entry in key_file.keys
    ]
    return KeysOut(
        service_pubkey=identity.pubkey,
        npub=encode_npub(identity.pubkey),
        dev_key=identity.dev,
        key_file=str(path),
        keys=keys,
        restart_pending=key_file.current.pubkey != identity.pubkey,
    )


@_admin(
    "GET",
    "/admin/outbox",
    OutboxOut,
    summary="Events not yet accepted by enough relays: count, age, attempts, errors",
)
async def admin_outbox(ctx: ApiContext) -> OutboxOut:
    pending = OutboxEvent.acked_at.is_(None)

    def read(db: Session) -> tuple[Any, list[OutboxItem]]:
        totals = db.execute(
            sa.select(
                sa.func.count(),
                sa.func.count(OutboxEvent.last_error),
                sa.func.min(OutboxEvent.created_at),
                sa.func.max(OutboxEvent.attempts),
            ).where(pending)
        ).one()
        rows = db.scalars(
            sa.select(OutboxEvent).where(pending).order_by(OutboxEvent.id).limit(OUTBOX_SHOWN)
        )
        items = [
            OutboxItem(
                r.event_id,
                r.kind,
                r.created_at,
                r.attempts,
                r.next_attempt_at,
                list(r.accepted_relays),
                r.last_error,
            )
            for r in rows
        ]
        return tuple(totals), items

    (count, failing, oldest, attempts), items = await ctx.db(read)
    return OutboxOut(
        pending=count,
        failing=failing,
        oldest_created_at=oldest,
        oldest_age_seconds=max(0, int(time.time()) - oldest) if oldest is not None else None,
        max_attempts=attempts or 0,
        oldest=items,
        publisher=_plain(ctx.gateway.outbox.statistics()),
    )
