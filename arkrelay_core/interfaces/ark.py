"""The Ark backend (arkd): VTXOs and the offchain transfer flow of PINS.md §1.5.

An Ark spend has two signing rounds. The core asks the backend to build the ark tx and
its checkpoint txs, collects the owner's signature on every ark-tx input (one challenge
each), submits, collects the owner's signature on every checkpoint VTXO input of the
server-signed checkpoints, and finalizes. The backend owns everything transaction-shaped
(PSBTs, sighashes, scripts); the core only moves 32-byte sighashes and 64-byte signatures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec
import trio

__all__ = [
    "ArkBackend",
    "ArkEvent",
    "ArkInfo",
    "FinalizedTx",
    "InputSignature",
    "InputToSign",
    "OffchainTx",
    "OwnershipProof",
    "SubmittedTx",
    "TxOutputSpec",
    "Vtxo",
]

VtxoStatus = Literal["spendable", "pending", "spent", "swept", "expired"]


class ArkInfo(msgspec.Struct, frozen=True):
    """What GetInfo tells, in the forms the core uses (keys x-only hex)."""

    version: str
    network: str
    signer_pubkey: str
    forfeit_pubkey: str
    unilateral_exit_delay: int
    dust: int
    vtxo_min_amount: int = 0
    vtxo_max_amount: int = -1
    digest: str = ""
    #: The Ark server's REST base URL for wallets (arkd's REST interface), or "" when
    #: the backend does not know one.
    server_url: str = ""


class Vtxo(msgspec.Struct, frozen=True):
    """A VTXO as the backend sees it. ``vtxo_id`` is ``txid:vout``."""

    vtxo_id: str
    owner: str
    amount: int
    script: str
    expires_at: int
    status: VtxoStatus = "spendable"
    created_at: int = 0
    ark_txid: str | None = None
    spent_by: str | None = None
    is_preconfirmed: bool = False


class TxOutputSpec(msgspec.Struct, frozen=True):
    """A requested output: ``amount`` sats to the default VTXO script of ``owner``."""

    owner: str
    amount: int


class InputToSign(msgspec.Struct, frozen=True):
    """One signature the owner of ``vtxo_id`` must give (one 31511 challenge).

    ``intent_proof``: an input of an ownership proof (``build_ownership_proof``); its
    ``vtxo_id`` is "" for input 0, the input committing to the proof's message."""

    tx_role: Literal["ark_tx", "checkpoint", "intent_proof"]
    psbt: str
    input_index: int
    sighash: str
    vtxo_id: str
    owner: str


class InputSignature(msgspec.Struct, frozen=True):
    input_index: int
    pubkey: str
    signature: str


class OffchainTx(msgspec.Struct, frozen=True):
    """An unsigned ark tx and its checkpoints, and the ark-tx inputs to be signed."""

    ark_txid: str
    ark_tx: str
    checkpoint_txs: tuple[str, ...]
    to_sign: tuple[InputToSign, ...]


class SubmittedTx(msgspec.Struct, frozen=True):
    """SubmitTx's answer: server-signed checkpoints and their inputs left to sign."""

    ark_txid: str
    final_ark_tx: str
    signed_checkpoint_txs: tuple[str, ...]
    to_sign: tuple[InputToSign, ...]


class OwnershipProof(msgspec.Struct, frozen=True):
    """An unsigned proof that the owner holds ``vtxo_ids`` (arkd's "intent", message type
    ``get-pending-tx``), and the owner's signatures it needs. ``message`` is exactly the
    string the proof commits to; send it with the proof, unchanged."""

    proof: str
    message: str
    vtxo_ids: tuple[str, ...]
    expire_at: int
    to_sign: tuple[InputToSign, ...]


class FinalizedTx(msgspec.Struct, frozen=True):
    ark_txid: str
    spent: tuple[str, ...]
    created: tuple[Vtxo, ...]


class ArkEvent(msgspec.Struct, frozen=True):
    """One item of the backend's transaction feed."""

    kind: Literal["ark_tx", "commitment_tx", "sweep_tx"]
    txid: str
    spent: tuple[str, ...] = ()
    created: tuple[Vtxo, ...] = ()
    block_height: int | None = None


@runtime_checkable
class ArkBackend(Protocol):
    """Implemented by arkrelay-arkd (and its simulator); checked by contract-tests.

    Errors: BackendUnavailable (5001), CircuitOpen (5005), VtxoAlreadySpent (2002),
    VtxoNotOwned (2003), VtxoExpired (2004), InsufficientBalance (2001),
    ProtocolViolation(3003) for a signature the server rejects.
    Optional features: ``"board"`` (can fund a key's VTXOs on request: simulators).

    Recovery of a submitted, never finalized tx whose SubmitTx answer was lost (arkd refuses
    the same tx twice): ``build_ownership_proof`` -> the owner signs every ``to_sign`` ->
    ``add_proof_signatures`` -> ``get_pending_txs`` gives SubmitTx's answer again, checked
    like SubmitTx's (its ``to_sign`` are the checkpoint inputs) -> ``finalize_tx``.
    """

    features: frozenset[str]

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...

    def statistics(self) -> Mapping[str, Any]: ...

    async def get_info(self) -> ArkInfo: ...

    async def list_vtxos(self, owner: str, *, spendable_only: bool = True) -> list[Vtxo]: ...

    async def get_vtxos(self, vtxo_ids: Sequence[str]) -> list[Vtxo]: ...

    async def build_offchain_tx(
        self, inputs: Sequence[Vtxo], outputs: Sequence[TxOutputSpec]
    ) -> OffchainTx:
        """Build the ark tx + one checkpoint per input. Sum(outputs) must equal sum(inputs)."""
        ...

    def add_signatures(self, psbt: str, signatures: Sequence[InputSignature]) -> str:
        """Place BIP340 signatures on the collaborative leaf of the given inputs."""
        ...

    async def submit_tx(self, signed_ark_tx: str, checkpoint_txs: Sequence[str]) -> SubmittedTx:
        """Idempotent for the same signed ark tx (returns the same answer)."""
        ...

    async def finalize_tx(
        self, ark_txid: str, final_checkpoint_txs: Sequence[str]
    ) -> FinalizedTx: ...

    async def build_ownership_proof(
        self, vtxos: Sequence[Vtxo], *, expire_at: int
    ) -> OwnershipProof:
        """An unsigned ownership proof of ``vtxos`` valid until ``expire_at`` (unix seconds,
        0: no expiry). Each VTXO must be on its owner's default script (else VtxoNotOwned)."""
        ...

    def add_proof_signatures(
        self, proof: OwnershipProof, signatures: Sequence[InputSignature]
    ) -> str:
        """Place the owner's BIP340 signatures over ``proof.to_sign``'s sighashes; each is
        checked (ProtocolViolation 3003 if invalid). Returns the signed proof."""
        ...

    async def get_pending_txs(self, proof: str, message: str) -> list[SubmittedTx]:
        """GetPendingTx: the submitted, unfinalized txs spending the proven VTXOs. The
        server verifies the proof; a refused one raises ProtocolViolation (3003)."""
        ...

    async def stream_events(
        self,
        send: trio.MemorySendChannel[ArkEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Feed transaction events into ``send`` until cancelled, reconnecting as needed."""
        ...

    async def board(self, owner: str, amount: int) -> Vtxo:
        """Create a VTXO for ``owner`` from outside funds. Feature ``"board"`` only;
        otherwise raises UnsupportedOperation."""
        ...
