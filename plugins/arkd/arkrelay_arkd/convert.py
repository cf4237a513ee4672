"""Conversions between arkd's protobuf messages and arkrelay_core values."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import grpc

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import ArkRelayError, BackendError, ProtocolViolation, VtxoAlreadySpent
from arkrelay_core.interfaces import ArkEvent, ArkInfo, Vtxo

from .errors import error_info

__all__ = [
    "ServerParams",
    "ark_event",
    "duplicate_submission",
    "owner_key",
    "server_params",
    "vtxo_from_proto",
    "xonly",
]


@dataclasses.dataclass(frozen=True)
class ServerParams:
    info: ArkInfo
    signer: bytes
    signers: tuple[bytes, ...]  # current first, then deprecated
    checkpoint_tapscript: bytes
    exit_delay: int
    #: OP_RETURN outputs (sub-dust ones included) arkd accepts in one ark tx.
    max_op_return_outputs: int = 1


def server_params(resp: Any) -> ServerParams:
    """The parameters a GetInfo response fixes for building and checking transactions."""
    signer = xonly(resp.signer_pubkey)
    info = ArkInfo(
        version=resp.version,
        network=resp.network,
        signer_pubkey=signer.hex(),
        forfeit_pubkey=xonly(resp.forfeit_pubkey).hex(),
        unilateral_exit_delay=resp.unilateral_exit_delay,
        dust=resp.dust,
        vtxo_min_amount=resp.vtxo_min_amount,
        vtxo_max_amount=resp.vtxo_max_amount,
        digest=resp.digest,
    )
    return ServerParams(
        info=info,
        signer=signer,
        signers=(signer, *(xonly(d.pubkey) for d in resp.deprecated_signers)),
        checkpoint_tapscript=bytes.fromhex(resp.checkpoint_tapscript),
        exit_delay=resp.unilateral_exit_delay,
        # arkd clamps its setting to at least 1; 0 only comes from a server without the field.
        max_op_return_outputs=max(1, resp.max_op_return_outputs),
    )


def duplicate_submission(exc: BackendError, ark_txid: str) -> ArkRelayError:
    cause = exc.__cause__
    if isinstance(cause, grpc.RpcError):
        info = error_info(cause)
        if info.name == "INVALID_ARK_PSBT" and "duplicated offchain tx" in info.message:
            return VtxoAlreadySpent(
                f"ark tx {ark_txid} was already submitted (by another process or before a "
                "restart); resume it with GetPendingTx"
            )
    return exc


def xonly(pubkey_hex: str) -> bytes:
    raw = bytes.fromhex(pubkey_hex)
    return raw[1:] if len(raw) == 33 else raw


def owner_key(owner: str) -> bytes:
    try:
        key = bytes.fromhex(owner)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ProtocolViolation(
            f"not an x-only public key: {owner!r}", code=ErrorCode.MALFORMED_CONTENT
        )
    return key


def vtxo_from_proto(v: Any, owner: str) -> Vtxo:
    now = time.time()
    if v.is_swept:
        status = "swept"
    elif v.is_spent:
        status = "spent"
    elif v.expires_at and v.expires_at <= now:
        status = "expired"
    else:
        status = "spendable"
    return Vtxo(
        vtxo_id=f"{v.outpoint.txid}:{v.outpoint.vout}",
        owner=owner,
        amount=v.amount,
        script=v.script,
        expires_at=v.expires_at,
        status=status,
        created_at=v.created_at,
        ark_txid=v.ark_txid or None,
        spent_by=v.spent_by or None,
        is_preconfirmed=v.is_preconfirmed,
    )


def ark_event(resp: Any, owners: Mapping[str, str]) -> ArkEvent | None:
    """The event a GetTransactionsStream message carries; None for heartbeats."""
    kind = resp.WhichOneof("data")
    if kind in (None, "heartbeat"):
        return None
    note = getattr(resp, kind)
    return ArkEvent(
        kind=kind,
        txid=note.txid,
        spent=tuple(f"{v.outpoint.txid}:{v.outpoint.vout}" for v in note.spent_vtxos),
        created=tuple(vtxo_from_proto(v, owners.get(v.script, "")) for v in note.spendable_vtxos),
    )
