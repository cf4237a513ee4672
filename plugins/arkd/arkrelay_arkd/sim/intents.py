"""Registering an intent for the next batch, rule for rule as arkd v0.9.15's RegisterIntent
(internal/core/application/service.go) with its boarding checks (processBoardingInputs,
validateBoardingInput); the refusals carry arkd's codes and texts (docs/simulators.md,
"Batches").

An intent's inputs are VTXOs the ledger knows or, otherwise, boarding coins on the chain;
its proof's outputs are what the batch pays (VTXOs in the tree, or on-chain outputs the
message names by index).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from embit.transaction import Transaction

from .. import arktx
from ..intentproof import ProofPSBT
from ..tapscript import (
    TAPTREE_FIELD_KEY,
    TapTree,
    decode_taptree_field,
    multisig_keys,
    parse_csv_closure,
    sequence_delay,
)
from . import intentcheck
from .errors import code
from .esplora import Chain, ChainError
from .vtxos import SimVtxo
from .wallet import address_of

__all__ = [
    "BoardingInput",
    "Intent",
    "Receiver",
    "RegisterMessage",
    "Settings",
    "check_register",
    "check_time_range",
    "encode_register",
    "parse_register",
]

#: An empty OP_RETURN: the output a proof without real outputs pays.
_EMPTY_OP_RETURN = b"\x6a"


@dataclasses.dataclass(frozen=True)
class RegisterMessage:
    onchain_output_indexes: list[int] | None
    valid_at: int
    expire_at: int
    cosigners_public_keys: list[str] | None


@dataclasses.dataclass(frozen=True)
class BoardingInput:
    txid: str
    vout: int
    amount: int
    pk_script: bytes
    leaves: tuple[bytes, ...]

    @property
    def outpoint(self) -> str:
        return f"{self.txid}:{self.vout}"


@dataclasses.dataclass(frozen=True)
class Receiver:
    script: bytes
    amount: int
    onchain: bool


@dataclasses.dataclass
class Intent:
    id: str
    proof_txid: str
    proof: str
    message: str
    boarding: list[BoardingInput]
    vtxos: list[SimVtxo]
    receivers: list[Receiver]
    cosigners: list[bytes]  # 33-byte keys

    @property
    def hash_id(self) -> str:
        """What BatchStarted lists: sha256 of the id's text (arkd's TimedIntent.HashID)."""
        return hashlib.sha256(self.id.encode()).hexdigest()

    @property
    def outpoints(self) -> list[str]:
        return [b.outpoint for b in self.boarding] + [v.outpoint for v in self.vtxos]

    def has_offchain_outputs(self) -> bool:
        return any(not r.onchain for r in self.receivers)


@dataclasses.dataclass(frozen=True)
class Settings:
    signer_xonly: bytes
    boarding_exit_delay: int
    dust: int
    utxo_min_amount: int
    network: str
    clock: Callable[[], float] = time.time


def parse_register(message: str) -> RegisterMessage:
    """Go's json.Unmarshal into RegisterMessage, then the type check."""
    try:
        doc = json.loads(message)
    except ValueError as exc:
        raise code.INVALID_INTENT_MESSAGE(f"failed to parse message: {exc}") from exc
    if not isinstance(doc, dict):
        raise code.INVALID_INTENT_MESSAGE("failed to parse message: not an object")
    fields = {k.casefold(): v for k, v in doc.items()}
    if fields.get("type") != "register":
        raise code.INVALID_INTENT_MESSAGE(f"invalid intent message type: {fields.get('type')}")
    try:
        indexes = fields.get("onchain_output_indexes")
        keys = fields.get("cosigners_public_keys")
        return RegisterMessage(
            None if indexes is None else [_int(i) for i in indexes],
            _int(fields.get("valid_at") or 0),
            _int(fields.get("expire_at") or 0),
            None if keys is None else [str(k) for k in keys],
        )
    except (TypeError, ValueError) as exc:
        raise code.INVALID_INTENT_MESSAGE(f"failed to parse message: {exc}") from exc


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value


def encode_register(msg: RegisterMessage) -> str:
    """The message as arkd re-encodes it before verifying (Go field order, no spaces)."""
    return json.dumps(
        {
            "type": "register",
            "onchain_output_indexes": msg.onchain_output_indexes,
            "valid_at": msg.valid_at,
            "expire_at": msg.expire_at,
            "cosigners_public_keys": msg.cosigners_public_keys,
        },
        separators=(",", ":"),
    )


def check_time_range(msg: RegisterMessage, now: int) -> None:
    meta = {"valid_at": str(msg.valid_at), "expire_at": str(msg.expire_at), "now": str(now)}
    if msg.valid_at > 0 and now < msg.valid_at:
        raise code.INVALID_INTENT_TIMERANGE("proof of ownership not yet valid", **meta)
    if msg.expire_at > 0 and now > msg.expire_at:
        raise code.INVALID_INTENT_TIMERANGE("proof of ownership expired", **meta)


def check_register(
    proof_b64: str,
    message: str,
    *,
    settings: Settings,
    find_vtxo: Callable[[str], SimVtxo | None],
    chain: Chain | None,
) -> Intent:
    """RegisterIntent's checks; the intent to queue, or an ArkdError."""
    msg = parse_register(message)
    now = int(settings.clock())
    check_time_range(msg, now)
    try:
        proof = intentcheck.parse(proof_b64)
    except intentcheck.ProofRefused as exc:
        raise code.INVALID_INTENT_PSBT(str(exc)) from exc
    proof_txid = proof.tx.txid().hex()
    if len(proof.inputs) < 2:
        raise code.INVALID_INTENT_PSBT("proof misses inputs", tx=proof_txid)
    encoded = encode_register(msg)

    seen: set[str] = set()
    vtxos: list[SimVtxo] = []
    boarding_candidates: list[tuple[int, str]] = []
    for index in range(1, len(proof.inputs)):
        outpoint = arktx.input_outpoint(proof, index)
        if outpoint in seen:
            raise code.INVALID_INTENT_PROOF(f"duplicated input {outpoint}")
        seen.add(outpoint)
        inp = proof.inputs[index]
        if not inp.taproot_scripts:
            raise code.INVALID_PSBT_INPUT(f"missing taproot leaf script on input {index}")
        if inp.witness_utxo is None:
            raise code.INVALID_PSBT_INPUT(f"missing witness utxo for input {outpoint}")
        vtxo = find_vtxo(outpoint)
        if vtxo is None:
            if msg.onchain_output_indexes:
                raise code.INVALID_INTENT_PROOF("cannot include onchain inputs and outputs")
            boarding_candidates.append((index, outpoint))
            continue
        _check_vtxo_input(proof, index, vtxo)
        vtxos.append(vtxo)

    try:
        intentcheck.verify(proof_b64, encoded, skip=[settings.signer_xonly])
    except intentcheck.ProofRefused as exc:
        raise code.INVALID_INTENT_PROOF(f"invalid intent proof: {exc}") from exc

    receivers = _receivers(proof, msg, settings)
    if not receivers:
        raise code.INVALID_INTENT_PROOF("proof does not contain outputs")
    if any(not r.onchain for r in receivers) and not msg.cosigners_public_keys:
        raise code.INVALID_INTENT_MESSAGE("CosignersPublicKeys is required in intent message")
    cosigners = _cosigners(msg, settings)

    total_in = sum(proof.inputs[i].witness_utxo.value for i in range(1, len(proof.inputs)))
    total_out = sum(out.value for out in proof.tx.vout)
    if total_out > total_in:
        raise code.INVALID_INTENT_PROOF(
            f"failed to compute intent fees: outputs ({total_out}) exceed inputs ({total_in})"
        )

    boarding = [
        _check_boarding_input(proof, index, outpoint, settings, chain, now)
        for index, outpoint in boarding_candidates
    ]
    return Intent(
        id=str(uuid.uuid4()),
        proof_txid=proof_txid,
        proof=proof_b64,
        message=encoded,
        boarding=boarding,
        vtxos=vtxos,
        receivers=receivers,
        cosigners=cosigners,
    )


def _check_vtxo_input(proof: ProofPSBT, index: int, vtxo: SimVtxo) -> None:
    utxo = proof.inputs[index].witness_utxo
    if vtxo.spent or vtxo.pending:
        what = "is currently being spent" if vtxo.pending else "already spent"
        raise code.VTXO_ALREADY_SPENT(f"input {vtxo.outpoint} {what}", vtxo_outpoint=vtxo.outpoint)
    if utxo.value != vtxo.amount:
        raise code.INVALID_PSBT_INPUT(
            f"witness utxo value mismatch: got {utxo.value} expected {vtxo.amount}"
        )
    if utxo.script_pubkey.data.hex() != vtxo.script:
        raise code.INVALID_PSBT_INPUT(
            f"invalid witness utxo script: got {utxo.script_pubkey.data.hex()} "
            f"expected {vtxo.script}"
        )
    leaves = _taptree(proof, index)
    if not leaves:
        raise code.INVALID_PSBT_INPUT(f"missing taptree for input {index}")
    tap_key = TapTree.from_leaves(leaves).output_key
    if tap_key.hex() != vtxo.xonly:
        raise code.INVALID_PSBT_INPUT(
            f"taproot key mismatch: got {tap_key.hex()} expected {vtxo.xonly}"
        )


def _taptree(proof: ProofPSBT, index: int) -> list[bytes]:
    raw = proof.inputs[index].unknown.get(TAPTREE_FIELD_KEY)
    if raw is None:
        return []
    try:
        return decode_taptree_field(raw)
    except (ValueError, IndexError):
        return []


def _receivers(proof: ProofPSBT, msg: RegisterMessage, settings: Settings) -> list[Receiver]:
    onchain = set(msg.onchain_output_indexes or [])
    receivers = []
    outputs = proof.tx.vout
    if len(outputs) == 1 and outputs[0].script_pubkey.data == _EMPTY_OP_RETURN:
        return []
    for index, out in enumerate(outputs):
        script, amount = out.script_pubkey.data, out.value
        if index in onchain:
            if amount < settings.utxo_min_amount:
                raise code.AMOUNT_TOO_LOW(
                    f"output {index} amount is lower than min utxo amount: "
                    f"{settings.utxo_min_amount}",
                    output_index=str(index),
                    amount=str(amount),
                    min_amount=str(settings.utxo_min_amount),
                )
            try:
                address_of(script, settings.network)
            except (ValueError, KeyError) as exc:
                raise code.INVALID_PKSCRIPT(
                    f"failed to get onchain address from script of output {index}: {exc}",
                    script=script.hex(),
                ) from exc
            receivers.append(Receiver(script, amount, True))
            continue
        if amount < settings.dust:
            raise code.AMOUNT_TOO_LOW(
                f"output {index} amount is lower than min vtxo amount: {settings.dust}",
                output_index=str(index),
                amount=str(amount),
                min_amount=str(settings.dust),
            )
        if len(script) != 34 or script[:2] != b"\x51\x20":
            raise code.INVALID_PKSCRIPT(
                f"output {index} is not a taproot output", script=script.hex()
            )
        receivers.append(Receiver(script, amount, False))
    return receivers


def _cosigners(msg: RegisterMessage, settings: Settings) -> list[bytes]:
    keys = []
    for text in msg.cosigners_public_keys or []:
        try:
            key = bytes.fromhex(text)
        except ValueError as exc:
            raise code.INVALID_INTENT_MESSAGE(f"invalid cosigner pubkey {text}") from exc
        if len(key) != 33 or key[0] not in (2, 3):
            raise code.INVALID_INTENT_MESSAGE(f"invalid cosigner pubkey {text}")
        if key[1:] == settings.signer_xonly:
            raise code.INVALID_INTENT_MESSAGE(f"invalid cosigner pubkeys: {text} is used by us")
        keys.append(key)
    return keys


def _check_boarding_input(
    proof: ProofPSBT,
    index: int,
    outpoint: str,
    settings: Settings,
    chain: Chain | None,
    now: int,
) -> BoardingInput:
    txid, _, vout_text = outpoint.partition(":")
    vout = int(vout_text)
    utxo = proof.inputs[index].witness_utxo
    leaves = _taptree(proof, index)
    if not leaves:
        raise code.INVALID_PSBT_INPUT(f"missing taptree for input {outpoint}")

    def refuse(reason: str) -> Exception:
        return code.INVALID_PSBT_INPUT(f"failed to validate boarding input: {reason}")

    if chain is None:
        # Without a chain the simulator knows no on-chain coin: an unknown input is a
        # VTXO it does not have.
        raise code.VTXO_NOT_FOUND(f"vtxo {outpoint} not found", vtxo_outpoints=outpoint)
    try:
        raw = chain.tx_hex(txid)
        status = chain.tx_status(txid) if raw is not None else None
    except ChainError as exc:
        raise code.INTERNAL_ERROR(f"failed to get tx {txid}: {exc}") from exc
    if raw is None or status is None:
        raise refuse(f"failed to get tx {txid}: not found")
    tx = Transaction.parse(bytes.fromhex(raw))
    if not status.confirmed:
        raise refuse(f"tx {txid} not confirmed")

    exit_delay = _check_boarding_script(leaves, settings, refuse)
    block_time = status.block_time or now
    if block_time + exit_delay < now:
        raise refuse(f"tx {txid} expired")
    if vout >= len(tx.vout):
        raise code.INVALID_PSBT_INPUT(
            f"invalid vout index {vout} for tx {txid} (tx has {len(tx.vout)} outputs)"
        )
    prevout = tx.vout[vout]
    if prevout.value < settings.utxo_min_amount:
        raise refuse(
            f"boarding input amount is lower than min utxo amount:{settings.utxo_min_amount}"
        )
    if prevout.script_pubkey.data != utxo.script_pubkey.data:
        raise code.INVALID_PSBT_INPUT(
            f"invalid witness utxo script: got {prevout.script_pubkey.data.hex()} "
            f"expected {utxo.script_pubkey.data.hex()}"
        )
    if prevout.value != utxo.value:
        raise code.INVALID_PSBT_INPUT(
            f"invalid witness utxo value: got {prevout.value} expected {utxo.value}"
        )
    tree = TapTree.from_leaves(leaves)
    if tree.pk_script != prevout.script_pubkey.data:
        raise code.INVALID_PSBT_INPUT(
            f"taproot key mismatch: got {tree.output_key.hex()} "
            f"expected {prevout.script_pubkey.data[2:].hex()}"
        )
    return BoardingInput(txid, vout, prevout.value, prevout.script_pubkey.data, tuple(leaves))


def _check_boarding_script(
    leaves: list[bytes], settings: Settings, refuse: Callable[[str], Exception]
) -> int:
    """validateVtxoScriptForSigners for the default boarding script: every collaborative
    leaf needs the server's signer key, and no exit leaf may open before the boarding exit
    delay. Returns the smallest exit delay (seconds)."""
    exits = []
    for leaf in leaves:
        csv = parse_csv_closure(leaf)
        if csv is not None:
            exits.append(sequence_delay(csv[0]))
            continue
        keys = multisig_keys(leaf)
        if keys is None:
            raise refuse(f"invalid vtxo script: unsupported closure {leaf.hex()}")
        if settings.signer_xonly not in keys:
            raise refuse("invalid vtxo script: signer pubkey not found in forfeit closure")
    if not exits:
        raise refuse("invalid vtxo script: no exit closure found")
    smallest = min(exits)
    if smallest < settings.boarding_exit_delay:
        raise refuse(
            f"invalid vtxo script: exit delay {smallest} is below {settings.boarding_exit_delay}"
        )
    return smallest
