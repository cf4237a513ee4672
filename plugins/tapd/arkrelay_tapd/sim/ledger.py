"""The simulated tapd's state over an arkrelay_lnd SimNetwork: assets minted in batches
anchored by real wallet transactions, balances (confirmed mints plus what asset invoices
and asset payments moved), asset invoices that are ordinary invoices of the network priced
by a fixed rate, and proofs.

Proofs are the simulator's own format, not tapd's TLV proof files: the asset's genesis as
JSON, signed (BIP340) by the issuing node. Verifying one checks that signature and that
the asset id follows from the genesis, so a proof can neither be forged nor altered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct

import msgspec
from arkrelay_lnd.sim import SimError, SimNetwork, SimNode
from arkrelay_lnd.sim.network import InvoiceState, PayStatus, SimInvoice, SimPayment

from arkrelay_core.nostr import bip340

__all__ = ["MSAT_PER_UNIT", "AssetLedger", "SimAsset"]

#: Price of one asset unit: 1 sat (gBTC is backed 1:1).
MSAT_PER_UNIT = 1_000
_PROOF_MAGIC = b"arkrelay-sim-proof\x00"
#: A taproot-shaped output (OP_1 <32 bytes>) anchoring each minting batch.
_ANCHOR_VALUE = 1_000


class _Genesis(msgspec.Struct, frozen=True):
    genesis_point: str
    name: str
    meta: str  # hex
    decimals: int
    amount: int
    issuer: str  # x-only hex of the issuing node's key
    output_index: int = 0
    asset_type: int = 0


@dataclasses.dataclass
class SimAsset:
    asset_id: bytes
    genesis: _Genesis
    mint_txid: str = ""

    @property
    def meta(self) -> bytes:
        return bytes.fromhex(self.genesis.meta)

    @property
    def meta_hash(self) -> bytes:
        return hashlib.sha256(self.meta).digest()


def asset_id_of(genesis: _Genesis) -> bytes:
    """tapd's formula: sha256(genesis outpoint || sha256(tag) || meta hash || output index
    || type), with the outpoint as txid:vout bytes."""
    txid, _, vout = genesis.genesis_point.partition(":")
    outpoint = bytes.fromhex(txid)[::-1] + struct.pack(">I", int(vout))
    return hashlib.sha256(
        outpoint
        + hashlib.sha256(genesis.name.encode()).digest()
        + hashlib.sha256(bytes.fromhex(genesis.meta)).digest()
        + struct.pack(">I", genesis.output_index)
        + bytes([genesis.asset_type])
    ).digest()


class AssetLedger:
    """Assets per node of ``network``; thread-safe under the network's lock."""

    def __init__(self, network: SimNetwork, *, version: str = "0.8.1-alpha") -> None:
        self.network = network
        self.version = version
        self.assets: dict[bytes, SimAsset] = {}
        #: What each node knows (minted, or imported a proof of), by node name.
        self.known: dict[str, set[bytes]] = {}
        #: Units moved in and out by asset invoices and payments, by node name.
        self.channel: dict[str, dict[bytes, int]] = {}
        self.reserved: dict[str, dict[bytes, int]] = {}
        self.seedlings: dict[str, list[_Genesis]] = {}
        self.macaroons = {name: os.urandom(16) for name in network.nodes}
        self._invoices: dict[tuple[str, bytes], tuple[bytes, int]] = {}
        self._payments: dict[tuple[str, bytes], tuple[bytes, int]] = {}
        network.listeners.append(self._follow)

    # ------------------------------------------------------------------ minting

    def mint(self, node: SimNode, name: str, amount: int, *, decimals: int, meta: bytes) -> int:
        """Add a seedling to ``node``'s pending batch; returns the batch size."""
        if amount <= 0 or not name:
            raise SimError("asset needs a name and a positive amount", "INVALID_ARGUMENT")
        with self.network.lock:
            batch = self.seedlings.setdefault(node.name, [])
            if any(s.name == name for s in batch):
                raise SimError(f"asset with name {name} already in batch", "ALREADY_EXISTS")
            batch.append(_Genesis("", name, meta.hex(), decimals, amount, _xonly(node).hex()))
            return len(batch)

    def finalize(self, node: SimNode) -> tuple[str, list[SimAsset]]:
        """Anchor the pending batch in a wallet transaction; returns (txid, assets)."""
        with self.network.lock:
            batch = self.seedlings.pop(node.name, [])
            if not batch:
                raise SimError("no pending batch", "NOT_FOUND")
            anchor = b"\x51\x20" + os.urandom(32)
            tx = node.wallet.send_outputs([(_ANCHOR_VALUE, anchor)], sat_per_vbyte=2)
            minted = []
            for index, seed in enumerate(batch):
                genesis = msgspec.structs.replace(
                    seed, genesis_point=f"{tx.txid}:0", output_index=index
                )
                asset = SimAsset(asset_id_of(genesis), genesis, tx.txid)
                self.assets[asset.asset_id] = asset
                self.known.setdefault(node.name, set()).add(asset.asset_id)
                minted.append(asset)
            return tx.txid, minted

    def confirmed(self, asset: SimAsset, node: SimNode) -> bool:
        return asset.genesis.issuer == _xonly(node).hex() and bool(
            node.wallet.confirmations(asset.mint_txid)
        )

    # ------------------------------------------------------------------ balances

    def balances(self, node: SimNode) -> dict[bytes, int]:
        with self.network.lock:
            out: dict[bytes, int] = {}
            for asset_id in self.known.get(node.name, set()):
                asset = self.assets[asset_id]
                minted = asset.genesis.amount if self.confirmed(asset, node) else 0
                total = minted + self.channel.get(node.name, {}).get(asset_id, 0)
                if total:
                    out[asset_id] = total
            return out

    def lookup(self, node: SimNode, asset_id: bytes) -> SimAsset:
        with self.network.lock:
            if asset_id not in self.known.get(node.name, set()):
                raise SimError("asset meta not found", "NOT_FOUND")
            return self.assets[asset_id]

    # ------------------------------------------------------------------ asset invoices

    def add_invoice(
        self,
        node: SimNode,
        asset_id: bytes,
        amount: int,
        *,
        memo: str,
        expiry: int,
        payment_hash: bytes | None,
    ) -> SimInvoice:
        self.lookup(node, asset_id)
        if amount <= 0:
            raise SimError("asset amount must be positive", "INVALID_ARGUMENT")
        with self.network.lock:
            invoice = self.network.add_invoice(
                node, amount * MSAT_PER_UNIT, memo=memo, expiry=expiry, payment_hash=payment_hash
            )
            self._invoices[(node.name, invoice.payment_hash)] = (asset_id, amount)
            return invoice

    def reserve(self, node: SimNode, asset_id: bytes, payment_hash: bytes, msat: int) -> int:
        """Set aside the units a payment of ``msat`` costs ``node``; returns them."""
        units = -(-msat // MSAT_PER_UNIT)
        with self.network.lock:
            held = self.reserved.setdefault(node.name, {})
            free = self.balances(node).get(asset_id, 0) - held.get(asset_id, 0)
            if units > free:
                raise SimError(f"insufficient asset balance: need {units}, have {free}", "UNKNOWN")
            held[asset_id] = held.get(asset_id, 0) + units
            self._payments[(node.name, payment_hash)] = (asset_id, units)
            return units

    def release(self, node: SimNode, payment_hash: bytes) -> None:
        """Undo a reservation whose payment never started."""
        with self.network.lock:
            entry = self._payments.pop((node.name, payment_hash), None)
            if entry is not None:
                self._unreserve(node.name, *entry)

    def _unreserve(self, name: str, asset_id: bytes, units: int) -> None:
        held = self.reserved.setdefault(name, {})
        held[asset_id] = held.get(asset_id, 0) - units

    def _follow(self, node: SimNode, update: SimInvoice | SimPayment) -> None:
        # Called under the network's lock, from the network itself.
        key = (node.name, update.payment_hash)
        if isinstance(update, SimInvoice):
            entry = self._invoices.get(key)
            if entry is not None and update.state is InvoiceState.SETTLED:
                del self._invoices[key]
                self._move(node.name, entry[0], entry[1])
            return
        entry = self._payments.get(key)
        if entry is None or update.status is PayStatus.IN_FLIGHT:
            return
        del self._payments[key]
        self._unreserve(node.name, *entry)
        if update.status is PayStatus.SUCCEEDED:
            self._move(node.name, entry[0], -entry[1])

    def _move(self, name: str, asset_id: bytes, units: int) -> None:
        moved = self.channel.setdefault(name, {})
        moved[asset_id] = moved.get(asset_id, 0) + units
        self.known.setdefault(name, set()).add(asset_id)

    # ------------------------------------------------------------------ proofs

    def export_proof(self, node: SimNode, asset_id: bytes) -> bytes:
        """The issuance proof of an asset ``node`` minted (signed with its key)."""
        asset = self.lookup(node, asset_id)
        if asset.genesis.issuer != _xonly(node).hex():
            raise SimError("only the issuer exports issuance proofs here", "NOT_FOUND")
        payload = msgspec.json.encode(asset.genesis)
        signature = bip340.schnorr_sign(node.secret, hashlib.sha256(payload).digest())
        return _PROOF_MAGIC + signature + payload

    def verify_proof(self, proof: bytes) -> tuple[bool, SimAsset]:
        """(valid, asset) of a proof; SimError if it cannot even be decoded."""
        if not proof.startswith(_PROOF_MAGIC) or len(proof) < len(_PROOF_MAGIC) + 65:
            raise SimError("unable to decode proof file", "INVALID_ARGUMENT")
        body = proof[len(_PROOF_MAGIC) :]
        signature, payload = body[:64], body[64:]
        try:
            genesis = msgspec.json.decode(payload, type=_Genesis)
            issuer = bytes.fromhex(genesis.issuer)
            asset_id = asset_id_of(genesis)
        except (msgspec.DecodeError, ValueError) as exc:
            raise SimError(f"unable to decode proof file: {exc}", "INVALID_ARGUMENT") from exc
        valid = len(issuer) == 32 and bip340.schnorr_verify(
            issuer, hashlib.sha256(payload).digest(), signature
        )
        return valid, SimAsset(asset_id, genesis, genesis.genesis_point.partition(":")[0])

    def import_proof(self, node: SimNode, proof: bytes) -> SimAsset:
        valid, asset = self.verify_proof(proof)
        if not valid:
            raise SimError("proof is invalid", "INVALID_ARGUMENT")
        with self.network.lock:
            self.assets.setdefault(asset.asset_id, asset)
            self.known.setdefault(node.name, set()).add(asset.asset_id)
            return self.assets[asset.asset_id]


def _xonly(node: SimNode) -> bytes:
    return bip340.xonly_public_key(node.secret)
