"""What a careful wallet checks in a signing challenge before it signs (PROTOCOL.md §3).

Two layers. :func:`check_challenge` holds the challenge to the protocol: from the
gateway, well formed, the `d` tag and ``payload_ref`` consistent, and ``payload_to_sign``
recomputed (the ``sign_payload`` digest, or the BIP341 sighash of the wallet's own input
in the PSBT). :class:`Careful` then holds a ``sign_tx`` challenge to the intent it
belongs to: the ark tx may take from the wallet no more than the intent's amount plus
its fee, must pay the recipient what the intent says, and a checkpoint tx must be one of
the ark tx the wallet already approved. A gateway that builds any other transaction,
by bug or by malice, gets no signature.

Every refusal is a :class:`ChallengeRefused` whose message names the rule broken.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import msgspec
from arkrelay_arkd import arktx, intentproof
from arkrelay_arkd.tapscript import ANCHOR_SCRIPT, default_vtxo_tree
from embit.psbt import PSBT

from arkrelay_core.nostr import Event, first_tag_value, tag_values
from arkrelay_core.protocol import (
    ArkServerInfo,
    Challenge,
    Kind,
    SignTxContext,
    challenge_d,
    payload_ref,
    sign_payload_digest,
)

__all__ = [
    "Careful",
    "ChallengeRefused",
    "Expectation",
    "check_challenge",
    "expectation_of",
    "sign_tx_digest",
]


class ChallengeRefused(ValueError):
    """The wallet will not sign this challenge; the message says why."""


def _require(condition: bool, message: str) -> None:
    # Explicit raises, not `assert`: the checks must hold under `python -O` too.
    if not condition:
        raise ChallengeRefused(message)


def check_challenge(
    event: Event, content: dict[str, Any], *, gateway: str, signer: str
) -> Challenge:
    """Return the challenge if it is a well-formed one from ``gateway`` whose digest the
    wallet holding ``signer`` can recompute; else raise :class:`ChallengeRefused`."""
    _require(event.kind == Kind.CHALLENGE, f"event {event.id} is kind {event.kind}, not 31511")
    _require(
        event.pubkey == gateway,
        f"challenge {event.id} comes from {event.pubkey}, not the gateway {gateway}",
    )
    try:
        challenge = msgspec.convert(content, Challenge)
    except msgspec.ValidationError as exc:
        raise ChallengeRefused(f"challenge {event.id} has malformed content: {exc}") from exc
    where = f"challenge {challenge.session_id} step {challenge.step_index}"
    _require(
        challenge.payload_ref == payload_ref(challenge.payload_to_sign),
        f"{where}: payload_ref {challenge.payload_ref!r} is not sha256:<payload_to_sign>",
    )
    _require(
        challenge.step_index <= challenge.step_total,
        f"{where}: step_index exceeds step_total {challenge.step_total}",
    )
    d_tag = first_tag_value(event, "d")
    expected_d = challenge_d(challenge.session_id, challenge.step_index)
    _require(d_tag == expected_d, f"{where}: d tag {d_tag!r}, expected {expected_d!r}")
    _require(bool(tag_values(event, "e")), f"{where}: no e tag naming the intent")
    if challenge.type == "sign_payload":
        _check_sign_payload(challenge, where)
    else:
        _check_sign_tx_digest(challenge, signer, where)
    return challenge


def _check_sign_payload(challenge: Challenge, where: str) -> None:
    _require("payload" in challenge.context, f"{where}: sign_payload without context.payload")
    digest = sign_payload_digest(challenge.domain, challenge.context["payload"])
    _require(
        digest == challenge.payload_to_sign,
        f"{where}: payload_to_sign {challenge.payload_to_sign} is not the digest {digest} "
        f"of domain {challenge.domain!r} and context.payload",
    )


def sign_tx_context(challenge: Challenge, where: str) -> SignTxContext:
    try:
        return msgspec.convert(challenge.context, SignTxContext)
    except msgspec.ValidationError as exc:
        raise ChallengeRefused(f"{where}: malformed sign_tx context: {exc}") from exc


def _decode(psbt_b64: str) -> PSBT:
    try:
        return arktx.decode_psbt(psbt_b64)
    # embit reports a truncated PSBT as RuntimeError, which decode_psbt lets through.
    except (arktx.ArkTxError, RuntimeError) as exc:
        raise ChallengeRefused(f"unusable PSBT: {exc}") from exc


def sign_tx_digest(psbt_b64: str, input_index: int, signer: str) -> str:
    """The BIP341 tapscript sighash of ``input_index``, once ``signer`` is known to own it."""
    psbt = _decode(psbt_b64)
    _require(
        0 <= input_index < len(psbt.inputs),
        f"input_index {input_index} but the PSBT has {len(psbt.inputs)} inputs",
    )
    try:
        keys = arktx.signature_keys(psbt, input_index)
        digest = arktx.tapscript_sighash(psbt, input_index).hex()
    except (arktx.ArkTxError, RuntimeError) as exc:
        raise ChallengeRefused(f"unusable PSBT: {exc}") from exc
    # A leaf that does not need our key would make our signature worthless or, worse, a
    # signature over someone else's input.
    _require(
        bytes.fromhex(signer) in keys,
        f"input {input_index} is spent by keys {[k.hex() for k in keys]}, not ours {signer}",
    )
    return digest


def proof_digest(psbt_b64: str, input_index: int, signer: str) -> str:
    """The sighash of ``input_index`` of an ownership proof (``tx_role`` ``intent_proof``),
    recomputed from the proof PSBT and the message it carries, once ``signer`` is known to
    be the key its leaf needs."""
    try:
        psbt = intentproof.decode_proof(psbt_b64)
        message = proof_message(psbt)
        _require(
            0 <= input_index < len(psbt.inputs),
            f"input_index {input_index} but the proof has {len(psbt.inputs)} inputs",
        )
        keys = arktx.signature_keys(psbt, input_index)
        sighashes = intentproof.proof_sighashes(psbt, message)
    except (arktx.ArkTxError, RuntimeError, AttributeError) as exc:
        raise ChallengeRefused(f"unusable proof PSBT: {exc}") from exc
    _require(
        bytes.fromhex(signer) in keys,
        f"proof input {input_index} is spent by keys {[k.hex() for k in keys]}, not ours",
    )
    return sighashes[input_index].sighash.hex()


def proof_message(psbt: PSBT) -> str:
    """The message an ownership proof commits to (its PSBT global 0x09)."""
    raw = psbt.unknown.get(intentproof.GLOBAL_MESSAGE_KEY)
    _require(raw is not None, "the proof carries no message")
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise ChallengeRefused(f"the proof message is not text: {exc}") from exc


def _check_sign_tx_digest(challenge: Challenge, signer: str, where: str) -> None:
    context = sign_tx_context(challenge, where)
    digest_of = proof_digest if context.tx_role == "intent_proof" else sign_tx_digest
    try:
        digest = digest_of(context.psbt, context.input_index, signer)
    except ChallengeRefused as exc:
        raise ChallengeRefused(f"{where}: {exc}") from exc
    _require(
        digest == challenge.payload_to_sign,
        f"{where}: payload_to_sign {challenge.payload_to_sign} is not the sighash {digest} "
        f"of input {context.input_index} of the {context.tx_role} PSBT",
    )


# -- the intent --------------------------------------------------------------------------


class Expectation(msgspec.Struct, frozen=True):
    """What one intent allows a transaction to do with the wallet's money."""

    type: str
    #: Sats that may leave the wallet at most: amount plus fee (the fee alone for a split).
    max_outflow: int
    #: Who must be paid, and how much: exactly ``amount`` in one output, or (for a land,
    #: where amount and fee go to the gateway together) at least ``amount`` in all.
    recipient: str | None = None
    amount: int = 0
    exact: bool = True
    #: A split's amounts, each of which must come back to the wallet as its own output.
    splits: tuple[int, ...] = ()
    #: The VTXOs the intent names to spend, if it does (an ownership proof proves no other).
    vtxo_ids: tuple[str, ...] = ()


def expectation_of(content: Mapping[str, Any], gateway: str) -> Expectation | None:
    """What the 31510 ``content`` allows; None for a type whose transactions the wallet
    cannot judge (a plugin's ``sign_payload`` types never reach ``sign_tx``)."""
    kind = content.get("type")
    params = content.get("params")
    if not isinstance(params, Mapping):
        return None
    fee = params.get("fee")
    fee_amount = fee.get("amount", 0) if isinstance(fee, Mapping) else 0
    fee_amount = fee_amount if isinstance(fee_amount, int) else 0
    amount = params.get("amount")
    named = params.get("vtxo_ids")
    vtxo_ids = tuple(v for v in named if isinstance(v, str)) if isinstance(named, list) else ()
    if kind in ("ark:transfer", "ark:swap_leg") and isinstance(amount, int):
        return Expectation(
            kind,
            amount + fee_amount,
            str(params.get("recipient_pubkey")),
            amount,
            exact=True,
            vtxo_ids=vtxo_ids,
        )
    if kind == "lightning:land" and isinstance(amount, int):
        return Expectation(kind, amount + fee_amount, gateway, amount, exact=False)
    splits = params.get("split_amounts")
    if kind == "vtxo:split" and isinstance(splits, list):
        return Expectation(kind, fee_amount, splits=tuple(s for s in splits if isinstance(s, int)))
    return None


class Careful:
    """Judges ``sign_tx`` challenges against the intents the wallet signed.

    ``terms`` (the Ark server's key, exit delay and dust, from ``get_info``) tells which
    output script pays whom; without them no ``sign_tx`` challenge is signed.
    """

    def __init__(self, signer: str, gateway: str) -> None:
        self.signer = signer
        self.gateway = gateway
        self.terms: ArkServerInfo | None = None
        self._expect: dict[str, Expectation | None] = {}
        #: Per session, the checkpoint txids an approved ark tx spends.
        self._approved: dict[str, set[str]] = {}

    def expect(self, session_id: str, intent_content: Mapping[str, Any]) -> None:
        self._expect[session_id] = expectation_of(intent_content, self.gateway)

    def knows(self, session_id: str) -> bool:
        return session_id in self._expect

    def judge(self, challenge: Challenge) -> None:
        """Raise :class:`ChallengeRefused` unless ``challenge`` does what its intent says."""
        where = f"challenge {challenge.session_id} step {challenge.step_index}"
        _require(
            challenge.session_id in self._expect,
            f"{where}: session of no intent this wallet signed",
        )
        if challenge.type != "sign_tx":
            return
        expect = self._expect[challenge.session_id]
        _require(expect is not None, f"{where}: a sign_tx for an intent that moves no VTXO")
        assert expect is not None
        _require(self.terms is not None, f"{where}: the Ark server's terms are unknown")
        context = sign_tx_context(challenge, where)
        if context.tx_role == "intent_proof":
            try:
                self._judge_proof(context.psbt, expect, challenge.session_id)
            except ChallengeRefused as exc:
                raise ChallengeRefused(f"{where}: {exc}") from exc
            return
        psbt = _decode(context.psbt)
        try:
            if context.tx_role == "ark_tx":
                self._judge_ark_tx(psbt, expect, challenge.session_id)
            else:
                self._judge_checkpoint(psbt, challenge.session_id)
        except ChallengeRefused as exc:
            raise ChallengeRefused(f"{where}: {exc}") from exc

    def _scripts_of(self, owner: str) -> set[bytes]:
        """The output scripts that pay ``owner``: P2TR and arkd's sub-dust form."""
        terms = self.terms
        assert terms is not None
        tree = default_vtxo_tree(
            bytes.fromhex(owner), bytes.fromhex(terms.signer_pubkey), terms.unilateral_exit_delay
        )
        return {tree.pk_script, arktx.sub_dust_script(tree.output_key)}

    def _judge_ark_tx(self, psbt: PSBT, expect: Expectation, session_id: str) -> None:
        me = bytes.fromhex(self.signer)
        mine = self._scripts_of(self.signer)
        taken = 0
        for i, inp in enumerate(psbt.inputs):
            try:
                if me in arktx.signature_keys(psbt, i):
                    _require(inp.witness_utxo is not None, f"input {i} has no witness utxo")
                    taken += inp.witness_utxo.value
            except arktx.ArkTxError as exc:
                raise ChallengeRefused(f"unusable PSBT: {exc}") from exc
        outputs = [(out.script_pubkey.data, out.value) for out in psbt.tx.vout]
        returned = [value for script, value in outputs if script in mine]
        outflow = taken - sum(returned)
        _require(
            outflow <= expect.max_outflow,
            f"the ark tx takes {outflow} sats from this wallet; the intent allows "
            f"{expect.max_outflow} at most",
        )
        if expect.recipient is not None:
            theirs = self._scripts_of(expect.recipient)
            paid = [value for script, value in outputs if script in theirs]
            if expect.exact:
                _require(
                    expect.amount in paid,
                    f"no output pays {expect.amount} sats to the recipient {expect.recipient} "
                    f"(it gets {paid})",
                )
            else:
                _require(
                    sum(paid) >= expect.amount,
                    f"the outputs pay {sum(paid)} sats to {expect.recipient}, not at least "
                    f"{expect.amount}",
                )
        if expect.splits:
            missing = Counter(expect.splits) - Counter(returned)
            _require(
                not missing,
                f"the split amounts {sorted(missing.elements())} do not come back to this wallet",
            )
        # Only the checkpoints this ark tx spends may be signed in the second round.
        self._approved.setdefault(session_id, set()).update(inp.txid.hex() for inp in psbt.inputs)

    def _judge_proof(self, psbt_b64: str, expect: Expectation, session_id: str) -> None:
        """An ownership proof for GetPendingTx: it must be one that can never spend.
        Input 0 spends the virtual toSpend tx of a ``get-pending-tx`` message (which
        exists nowhere), every other input is a VTXO of this wallet (and of the intent's
        when it named them), and it pays nothing but empty OP_RETURNs. Asked only for a
        session whose ark tx this wallet signed: there is nothing to recover otherwise."""
        _require(
            session_id in self._approved,
            "an ownership proof for a session whose ark tx this wallet never signed",
        )
        try:
            psbt = intentproof.decode_proof(psbt_b64)
        except arktx.ArkTxError as exc:
            raise ChallengeRefused(f"unusable proof PSBT: {exc}") from exc
        message = proof_message(psbt)
        try:
            parsed = json.loads(message)
        except ValueError as exc:
            raise ChallengeRefused(f"the proof message is not JSON: {exc}") from exc
        _require(
            isinstance(parsed, dict) and parsed.get("type") == intentproof.GET_PENDING_TX,
            f"the proof message {message!r} is not a get-pending-tx request",
        )
        _require(len(psbt.inputs) >= 2, "the proof proves no VTXO")
        mine = self._scripts_of(self.signer)
        named = set(expect.vtxo_ids)
        for i in range(1, len(psbt.inputs)):
            utxo = psbt.inputs[i].witness_utxo
            _require(utxo is not None, f"proof input {i} has no witness utxo")
            _require(
                utxo.script_pubkey.data in mine,
                f"proof input {i} is not a VTXO of this wallet",
            )
            outpoint = arktx.input_outpoint(psbt, i)
            _require(
                not named or outpoint in named,
                f"proof input {i} ({outpoint}) is not a VTXO the intent named",
            )
        first = psbt.inputs[1].witness_utxo.script_pubkey.data
        to_spend = intentproof.to_spend_tx(message, first)
        _require(
            (psbt.inputs[0].txid, psbt.inputs[0].vout) == (to_spend.txid(), 0),
            "proof input 0 does not spend the toSpend tx of its message",
        )
        for out in psbt.tx.vout:
            _require(
                out.value == 0 and out.script_pubkey.data[:1] == b"\x6a",
                f"the proof pays {out.value} sats to {out.script_pubkey.data.hex()}",
            )

    def _judge_checkpoint(self, psbt: PSBT, session_id: str) -> None:
        txid = arktx.txid(psbt)
        _require(
            txid in self._approved.get(session_id, set()),
            f"checkpoint tx {txid} is not spent by an ark tx this wallet approved",
        )
        _require(len(psbt.inputs) == 1, "a checkpoint tx spends exactly one VTXO")
        utxo = psbt.inputs[0].witness_utxo
        _require(utxo is not None, "the checkpoint input has no witness utxo")
        carried = [out.value for out in psbt.tx.vout if out.script_pubkey.data != ANCHOR_SCRIPT]
        _require(
            carried == [utxo.value],
            f"the checkpoint tx carries {carried} of the {utxo.value} sats it spends",
        )
