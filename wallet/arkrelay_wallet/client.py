"""The reference wallet: talks to the gateway through any Nostr relay (PROTOCOL.md).

It builds intents and service requests, reads what comes back on its own subscription
(``link``), and answers signing challenges the way a careful wallet does: it signs only
what it can recompute and what its intent allows (``checks``), and raises
:class:`ChallengeRefused` otherwise. ``arkrelay demo`` and the tests drive it step by step
(``publish`` / ``next`` / ``answer``) or whole (``run_ceremony``, ``call``).
"""

# Every wait takes its own `timeout` on purpose (ASYNC109 prefers a caller's cancel scope):
# running out must fail with a message naming what was awaited, not a bare Cancelled.
# ruff: noqa: ASYNC109

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from arkrelay_core.interfaces import FinalizedTx
from arkrelay_core.nostr import (
    Event,
    Scheme,
    bip340,
    encrypt_dm,
    first_tag_value,
    sign_event,
    tag_values,
)
from arkrelay_core.protocol import (
    ArkServerInfo,
    Kind,
    PendingArkTx,
    challenge_d,
    service_response_d,
    session_id_for,
)

from .arkserver import ServerVtxo, ark_address, compare, default_script, fetch_vtxos
from .checks import Careful, ChallengeRefused, check_challenge
from .link import (
    DEFAULT_TIMEOUT,
    CeremonyTimeout,
    PublishRefused,
    Received,
    RelayError,
    RelayLink,
    Trace,
    WalletError,
    deadline_left,
    find_error,
)
from .recovery import finalize_handed_over, finalize_pending
from .restark import ArkServerRest

__all__ = [
    "OMIT",
    "CeremonyTimeout",
    "ChallengeRefused",
    "PublishRefused",
    "Received",
    "RelayError",
    "SyncCheck",
    "Wallet",
    "WalletError",
    "find_error",
]

CEREMONY_TIMEOUT = 60.0


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


#: In ``content_overrides``: remove that key from the intent content.
OMIT: Any = _Omit()


class SyncCheck(msgspec.Struct, frozen=True):
    """The gateway's sync_state beside the Ark server's own list of the wallet's VTXOs."""

    state: dict[str, Any]
    server: list[ServerVtxo]
    #: Where they disagree; empty when they agree.
    problems: list[str]

    @property
    def server_balance(self) -> int:
        return sum(v.amount for v in self.server)


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


class Wallet(RelayLink):
    def __init__(
        self,
        relay_url: str,
        gateway_pubkey: str,
        *,
        secret: bytes | None = None,
        scheme: str = "nip44",
        network: str = "regtest",
        reconnect: bool = False,
        trace: Trace | None = None,
    ) -> None:
        super().__init__(relay_url, gateway_pubkey, secret=secret, reconnect=reconnect, trace=trace)
        self.scheme = Scheme(scheme)
        self.network = network
        #: Judges sign_tx challenges against this wallet's intents.
        self.careful = Careful(self.pubkey, gateway_pubkey)
        #: Challenges refused, with why, in order.
        self.refused: list[tuple[Received, str]] = []

    # -- building events --------------------------------------------------------------

    def nip04(self) -> None:
        """Send what follows in NIP-04, as an old client would."""
        self.scheme = Scheme.NIP04

    def intent(
        self,
        type: str,
        params: dict[str, Any],
        *,
        action_id: str | None = None,
        expires_in: int = 600,
        d_tag: bool = True,
        content_overrides: dict[str, Any] | None = None,
        created_at: int | None = None,
    ) -> Event:
        """A signed 31510. ``content_overrides`` replaces content keys (``OMIT`` drops one);
        the `d` tag keeps ``action_id`` whatever the overrides say."""
        action_id = action_id if action_id is not None else str(uuid.uuid4())
        content: dict[str, Any] = {
            "action_id": action_id,
            "type": type,
            "params": params,
            "expires_at": int(time.time()) + expires_in,
            "network": self.network,
            "protocol_version": "1.0",
        }
        for key, value in (content_overrides or {}).items():
            if value is OMIT:
                content.pop(key, None)
            else:
                content[key] = value
        tags = [["p", self.gateway_pubkey]]
        if d_tag:
            tags.append(["d", action_id])
        event = sign_event(
            self.key,
            kind=int(Kind.INTENT),
            content=_json(content),
            tags=tags,
            created_at=created_at,
        )
        # The wallet signs challenges only for sessions of intents it signed itself.
        self.careful.expect(session_id_for(event.id), content)
        return event

    def request(self, action: str, *, request_id: str | None = None, **fields: Any) -> Event:
        """A signed 31500 ``{action, request_id, **fields}``, encrypted to the gateway."""
        request_id = request_id if request_id is not None else str(uuid.uuid4())
        content = {"action": action, "request_id": request_id, **fields}
        return sign_event(
            self.key,
            kind=int(Kind.SERVICE_REQUEST),
            content=encrypt_dm(self.secret, self.gateway_pubkey, _json(content), self.scheme),
            tags=[["p", self.gateway_pubkey], ["d", request_id]],
        )

    def build_answer(
        self,
        challenge: Received,
        *,
        signature: str | None = None,
        pubkey_override: str | None = None,
        payload_ref_override: str | None = None,
        secret_override: bytes | None = None,
    ) -> Event:
        """The 31512 answering ``challenge``, after the careful checks
        (:class:`ChallengeRefused` if one fails, and the challenge goes to ``refused``).
        ``secret_override`` signs the payload with another key while the event and the
        content's ``pubkey`` stay this wallet's; ``signature`` replaces the signature."""
        try:
            self.inspect(challenge)
            checked = check_challenge(
                challenge.event, challenge.content, gateway=self.gateway_pubkey, signer=self.pubkey
            )
            self.careful.judge(checked)
        except ChallengeRefused as exc:
            self.refused.append((challenge, str(exc)))
            raise
        if signature is None:
            key = secret_override if secret_override is not None else self.key
            signature = bip340.schnorr_sign(key, bytes.fromhex(checked.payload_to_sign)).hex()
        content = {
            "session_id": checked.session_id,
            "type": checked.type,
            "signature": signature,
            "payload_ref": payload_ref_override or checked.payload_ref,
            "algo": "BIP340",
            "pubkey": pubkey_override or self.pubkey,
        }
        scheme = challenge.scheme or self.scheme
        return sign_event(
            self.key,
            kind=int(Kind.SIGNING_RESPONSE),
            content=encrypt_dm(self.secret, self.gateway_pubkey, _json(content), scheme),
            tags=[
                ["p", self.gateway_pubkey],
                ["d", challenge_d(checked.session_id, checked.step_index)],
                ["e", challenge.event.id],
            ],
        )

    async def answer(
        self,
        challenge: Received,
        *,
        signature: str | None = None,
        pubkey_override: str | None = None,
        payload_ref_override: str | None = None,
        secret_override: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Event:
        """Check, sign and publish the 31512 for ``challenge``; see :meth:`build_answer`."""
        deadline = trio.current_time() + timeout
        if challenge.content.get("type") == "sign_tx" and self.careful.terms is None:
            await self.load_terms(timeout=timeout)
        response = self.build_answer(
            challenge,
            signature=signature,
            pubkey_override=pubkey_override,
            payload_ref_override=payload_ref_override,
            secret_override=secret_override,
        )
        await self.publish(response, timeout=deadline_left(deadline))
        return response

    def inspect(self, challenge: Received) -> None:
        """A subclass's own checks before the standard ones (raise ChallengeRefused)."""

    async def load_terms(self, *, timeout: float = DEFAULT_TIMEOUT) -> ArkServerInfo:
        """Ask the gateway for the Ark server's terms the output checks need."""
        info = await self.call("get_info", timeout=timeout)
        try:
            terms = msgspec.convert(info.get("ark"), ArkServerInfo)
        except msgspec.ValidationError as exc:
            raise WalletError(f"{self}: get_info gave no usable Ark server terms: {exc}") from exc
        self.careful.terms = terms
        return terms

    async def ark_address(self, *, timeout: float = DEFAULT_TIMEOUT) -> str:
        """This wallet's Ark address (``tark1...`` off mainnet), where any Ark wallet, such
        as @arkade-os/sdk's, pays it: the default VTXO script of this wallet's key on the
        gateway's Ark server (terms from get_info)."""
        terms = self.careful.terms or await self.load_terms(timeout=timeout)
        return ark_address(self.pubkey, terms, self.network)

    async def server_vtxos(self, *, timeout: float = DEFAULT_TIMEOUT) -> list[ServerVtxo]:
        """This wallet's spendable VTXOs as the Ark server itself lists them (its REST
        indexer, at the URL get_info names), not as the gateway reports them."""
        deadline = trio.current_time() + timeout
        terms = self.careful.terms or await self.load_terms(timeout=timeout)
        return await fetch_vtxos(
            terms.server_url,
            [default_script(self.pubkey, terms)],
            timeout=deadline_left(deadline),
        )

    async def check_with_server(self, *, timeout: float = DEFAULT_TIMEOUT) -> SyncCheck:
        """``sync_state`` from the gateway and the Ark server's own list, compared."""
        deadline = trio.current_time() + timeout
        state = await self.call("sync_state", timeout=timeout)
        server = await self.server_vtxos(timeout=deadline_left(deadline))
        return SyncCheck(state, server, compare(server, state))

    async def finalize_handed_over(
        self, outcome: Received, *, timeout: float = DEFAULT_TIMEOUT
    ) -> FinalizedTx:
        """Finalize at the Ark server, over its REST interface, the submitted tx a 31341
        handed over (``pending_tx``): only a spend this wallet signed, its checkpoints
        signed here (``recovery.finalize_submitted``'s checks)."""
        try:
            pending = msgspec.convert(outcome.content.get("pending_tx"), PendingArkTx)
        except msgspec.ValidationError as exc:
            raise WalletError(f"{self}: the outcome hands over no pending_tx: {exc}") from exc
        terms = self.careful.terms or await self.load_terms(timeout=timeout)
        server = ArkServerRest(terms.server_url, timeout=timeout)
        return await finalize_handed_over(server, self.secret, pending)

    async def finalize_at_server(self, *, timeout: float = DEFAULT_TIMEOUT) -> list[FinalizedTx]:
        """Finalize whatever the Ark server holds pending for this wallet's VTXOs
        (GetPendingTx with an ownership proof, over REST; ``recovery.finalize_pending``)."""
        terms = self.careful.terms or await self.load_terms(timeout=timeout)
        return await finalize_pending(ArkServerRest(terms.server_url, timeout=timeout), self.secret)

    def _is_outcome(self, action_id: str | None, intent_id: str) -> Callable[[Received], bool]:
        def outcome(received: Received) -> bool:
            event = received.event
            if event.pubkey != self.gateway_pubkey:
                return False
            answered = tag_values(event, "e")
            if event.kind == Kind.CONFIRMATION:
                return intent_id in answered
            if event.kind != Kind.FAILURE:
                return False
            # The `e` tag tells apart two intents sharing an action_id (a replay, 1004).
            if answered:
                return intent_id in answered
            return action_id is not None and received.content.get("ref_action_id") == action_id

        return outcome

    async def wait_outcome(
        self, action_id: str | None, intent_id: str, timeout: float = CEREMONY_TIMEOUT
    ) -> Received:
        """The gateway's 31340 naming ``intent_id`` in `e`, or its 31341 for that intent
        (by `e`, or by ``ref_action_id`` when it carries no `e` tag)."""
        return await self._take(
            self._is_outcome(action_id, intent_id),
            f"31340/31341 outcome of intent {intent_id} (action {action_id})",
            timeout,
            session=session_id_for(intent_id),
        )

    async def run_ceremony(
        self, intent: Event, *, timeout: float = CEREMONY_TIMEOUT, publish: bool = True
    ) -> Received:
        """Publish ``intent``, answer its session's challenges lowest step first, and return
        the outcome (31340 or 31341) as soon as one arrives. ``publish=False`` for an
        intent someone else submits (a batch leg)."""
        deadline = trio.current_time() + timeout
        action_id = _action_id_of(intent)
        session_id = session_id_for(intent.id)
        is_outcome = self._is_outcome(action_id, intent.id)

        def wanted(received: Received) -> bool:
            if is_outcome(received):
                return True
            return (
                received.event.kind == Kind.CHALLENGE
                and received.content.get("session_id") == session_id
            )

        def order(received: Received) -> tuple[int, int]:
            if is_outcome(received):
                return (0, 0)
            step = received.content.get("step_index")
            return (1, step if isinstance(step, int) else 0)

        if publish:
            await self.publish(intent, timeout=deadline_left(deadline))
        while True:
            received = await self._take(
                wanted,
                f"challenge or outcome for session {session_id} (action {action_id})",
                deadline_left(deadline),
                order,
                session=session_id,
            )
            if is_outcome(received):
                return received
            await self.answer(received, timeout=deadline_left(deadline))

    async def call(self, action: str, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any) -> dict:
        """Send a 31500 and return the content of the gateway's 31501 answering it."""
        deadline = trio.current_time() + timeout
        request = self.request(action, **fields)
        await self.publish(request, timeout=deadline_left(deadline))
        d_tag = service_response_d(request.id)

        def response(received: Received) -> bool:
            return (
                received.event.kind == Kind.SERVICE_RESPONSE
                and received.event.pubkey == self.gateway_pubkey
                and first_tag_value(received.event, "d") == d_tag
            )

        received = await self._take(
            response, f"31501 answering {action} request {request.id}", deadline_left(deadline)
        )
        return received.content


def _action_id_of(intent: Event) -> str | None:
    try:
        content = msgspec.json.decode(intent.content)
    except msgspec.DecodeError:
        content = None
    if isinstance(content, dict) and isinstance(content.get("action_id"), str):
        return content["action_id"]
    return first_tag_value(intent, "d")
