"""MuSig2 signing of a VTXO tree: the server coordinates and cosigns (ark-lib tree/musig2.go).

Every tree tx spends its one input by key path with SIGHASH_DEFAULT; the key is the MuSig2
aggregate of the tx's cosigners, x-only tweaked with the sweep root. The coordinator
collects every cosigner's public nonces (one per tx), aggregates them per tx, collects the
partial signatures, checks each one (a wrong one names its signer) and combines them into
the tx's BIP340 signature. The server's own signer key is a cosigner of every tx.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from embit.script import Script
from embit.transaction import SIGHASH

from .. import musig2
from .txtree import TreeTx, cosigners_of, tree_tweak

__all__ = ["TAP_KEY_SIG", "Coordinator", "SigningRefused", "TxSession"]

#: PSBT_IN_TAP_KEY_SIG (BIP371); embit keeps it among the input's unknown fields.
TAP_KEY_SIG = b"\x13"


class SigningRefused(ValueError):
    """A cosigner's nonces or signatures are unusable; ``signer`` is its x-only hex key."""

    def __init__(self, signer: str, reason: str) -> None:
        super().__init__(reason)
        self.signer = signer


@dataclasses.dataclass
class TxSession:
    tree_tx: TreeTx
    keys: list[bytes]  # sorted 33-byte cosigner keys
    tweak: bytes
    msg: bytes
    aggnonce: bytes | None = None

    def context(self) -> musig2.SessionContext:
        assert self.aggnonce is not None
        return musig2.SessionContext(self.aggnonce, self.keys, [self.tweak], [True], self.msg)


def _sighash(tx: TreeTx, prevout: tuple[bytes, int]) -> bytes:
    return tx.psbt.tx.sighash_taproot(
        0, script_pubkeys=[Script(prevout[0])], values=[prevout[1]], sighash=SIGHASH.DEFAULT
    )


class Coordinator:
    """One tree's signing session: nonces, then partial signatures, then the signed tree."""

    def __init__(
        self,
        tree: TreeTx,
        root: bytes,
        batch_output: tuple[bytes, int],
        server_secret: bytes,
        server_key: bytes,
    ) -> None:
        self.tree = tree
        self.server_key = server_key
        self._server_secret = server_secret
        self.txs: dict[str, TxSession] = {}
        for node in tree.walk():
            keys = musig2.key_sort(cosigners_of(node.psbt))
            agg = musig2.key_agg(keys)
            prevout = tree.parent_output(node.txid) if node is not tree else batch_output
            assert prevout is not None
            self.txs[node.txid] = TxSession(
                node, keys, tree_tweak(agg.xonly(), root), _sighash(node, prevout)
            )
        #: x-only hex -> {txid -> pubnonce}
        self.nonces: dict[str, dict[str, bytes]] = {}
        self.signatures: dict[str, dict[str, bytes]] = {}
        self._secnonces: dict[str, bytearray] = {}
        mine: dict[str, bytes] = {}
        for txid in self.txs:
            secnonce, pubnonce = musig2.nonce_gen(server_secret, server_key, None, None, None)
            self._secnonces[txid] = secnonce
            mine[txid] = pubnonce
        self.nonces[server_key[1:].hex()] = mine

    def signers(self) -> set[str]:
        """Every cosigner's x-only hex key (the server's included)."""
        return {k[1:].hex() for s in self.txs.values() for k in s.keys}

    def _txs_of(self, xonly_hex: str) -> list[str]:
        return [t for t, s in self.txs.items() if any(k[1:].hex() == xonly_hex for k in s.keys)]

    def add_nonces(self, pubkey: bytes, nonces: Mapping[str, bytes]) -> None:
        signer = pubkey[-32:].hex()
        wanted = self._txs_of(signer)
        if not wanted:
            raise SigningRefused(signer, f"{signer} is not a cosigner of this batch")
        missing = [t for t in wanted if t not in nonces]
        if missing:
            raise SigningRefused(signer, f"missing nonce for txid {missing[0]}")
        for txid in wanted:
            if len(nonces[txid]) != 66:
                raise SigningRefused(signer, f"nonce for {txid} is not 66 bytes")
        self.nonces[signer] = {t: nonces[t] for t in wanted}

    def has_all_nonces(self) -> bool:
        return self.signers() <= set(self.nonces)

    def nonces_of_tx(self, txid: str) -> dict[str, bytes]:
        keys = self.txs[txid].keys
        return {k[1:].hex(): self.nonces[k[1:].hex()][txid] for k in keys}

    def aggregate_nonces(self) -> dict[str, bytes]:
        out = {}
        for txid, session in self.txs.items():
            by_key = self.nonces_of_tx(txid)
            try:
                session.aggnonce = musig2.nonce_agg([by_key[k[1:].hex()] for k in session.keys])
            except musig2.MusigError as exc:
                raise SigningRefused(_culprit(exc, session.keys), f"bad nonce: {exc}") from exc
            out[txid] = session.aggnonce
        return out

    def sign_as_server(self) -> None:
        sigs = {}
        for txid, session in self.txs.items():
            sigs[txid] = musig2.sign(self._secnonces[txid], self._server_secret, session.context())
        self.add_signatures(self.server_key, sigs)

    def add_signatures(self, pubkey: bytes, sigs: Mapping[str, bytes]) -> None:
        """Check every partial signature ``pubkey`` owes; refuse the lot at the first bad one."""
        signer = pubkey[-32:].hex()
        wanted = self._txs_of(signer)
        if not wanted:
            raise SigningRefused(signer, f"{signer} is not a cosigner of this batch")
        for txid in wanted:
            psig = sigs.get(txid)
            if psig is None:
                raise SigningRefused(signer, f"missing musig2 signature for tx {txid}")
            session = self.txs[txid]
            pubnonces = [self.nonces[k[1:].hex()][txid] for k in session.keys]
            index = next(i for i, k in enumerate(session.keys) if k[1:].hex() == signer)
            ok = len(psig) == 32 and musig2.partial_sig_verify(
                psig, pubnonces, session.keys, [session.tweak], [True], session.msg, index
            )
            if not ok:
                raise SigningRefused(signer, f"invalid signature for txid {txid}")
        self.signatures[signer] = {t: sigs[t] for t in wanted}

    def has_all_signatures(self) -> bool:
        return self.signers() <= set(self.signatures)

    def signed_tree(self) -> dict[str, bytes]:
        """Combine the partial signatures; each tx's input gets its 64-byte signature."""
        out = {}
        for txid, session in self.txs.items():
            psigs = [self.signatures[k[1:].hex()][txid] for k in session.keys]
            sig = musig2.partial_sig_agg(psigs, session.context())
            session.tree_tx.psbt.inputs[0].unknown[TAP_KEY_SIG] = sig
            out[txid] = sig
        return out


def _culprit(exc: Exception, keys: list[bytes]) -> str:
    signer = getattr(exc, "signer", None)
    if isinstance(signer, int) and 0 <= signer < len(keys):
        return keys[signer][1:].hex()
    return ""
