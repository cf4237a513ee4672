"""The simulator's on-chain wallet: one key, its P2TR (BIP86) address, coins from the chain.

arkd funds every commitment tx from its own wallet and takes the change back; so does the
simulator. The wallet's coins are whatever the chain lists for its address; coins picked
for a batch stay reserved until that batch ends, so two batches never pick the same coin.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

from embit import ec
from embit.networks import NETWORKS
from embit.script import Script
from embit.transaction import Transaction

from arkrelay_core.bitcoin import SIGHASH_DEFAULT, taproot_sighash
from arkrelay_core.nostr import bip340

from .esplora import Chain, Utxo

__all__ = [
    "NETWORK_PARAMS",
    "InsufficientFunds",
    "ServerWallet",
    "address_of",
    "vsize_estimate",
    "wallet_address",
]

#: arkd's network names -> embit's.
NETWORK_PARAMS = {
    "regtest": NETWORKS["regtest"],
    "testnet": NETWORKS["test"],
    "signet": NETWORKS["signet"],
    "bitcoin": NETWORKS["main"],
    "mainnet": NETWORKS["main"],
}


def address_of(script: bytes, network: str) -> str:
    return Script(script).address(NETWORK_PARAMS[network])


def vsize_estimate(
    key_path_inputs: int, script_path_inputs: int, output_scripts: Sequence[bytes]
) -> int:
    """vbytes of a signed segwit tx, rounded up: key-path inputs carry one 64-byte signature;
    script-path inputs (boarding, through the collaborative leaf) two signatures, a 68-byte
    script and a 65-byte control block."""
    inputs = key_path_inputs + script_path_inputs
    base = 4 + 1 + 4 + inputs * (32 + 4 + 1 + 4) + 1 + sum(9 + len(s) for s in output_scripts)
    witness = 2 + key_path_inputs * (1 + 1 + 64) + script_path_inputs * (1 + 2 * 65 + 69 + 66)
    return math.ceil((base * 4 + witness) / 4)


def wallet_address(secret: bytes, network: str) -> str:
    """The server wallet's BIP86 P2TR address: arkd's forfeit address, which GetInfo
    announces (and wallets check forfeits against) whether or not a chain is attached."""
    return ServerWallet(secret, None, network).address


class ServerWallet:
    def __init__(self, secret: bytes, chain: Chain | None, network: str) -> None:
        self._key = ec.PrivateKey(secret)
        self._tweaked = self._key.taproot_tweak(b"")
        self._chain = chain
        self.network = network
        self.xonly = self._tweaked.xonly()
        self.pk_script = b"\x51\x20" + self.xonly
        self.address = address_of(self.pk_script, network)
        self._reserved: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    @property
    def chain(self) -> Chain:
        if self._chain is None:
            raise RuntimeError("the server wallet has no chain to use")
        return self._chain

    def fund(self, amount: int) -> tuple[str, int]:
        """Ask the chain's faucet for ``amount`` sats (the simulator's start-up liquidity)."""
        return self.chain.faucet(self.address, amount)

    def reserve(self, amount: int) -> list[Utxo]:
        """Coins worth at least ``amount``, largest first, kept from other batches. The
        change of a commitment tx still in the mempool counts: arkd's wallet spends its
        unconfirmed change too, so back-to-back batches do not wait for a block."""
        with self._lock:
            listed = self.chain.utxos(self.address)
            # Forget spent coins once the chain stops listing them: the set stays small.
            self._reserved &= {(u.txid, u.vout) for u in listed}
            free = [u for u in listed if (u.txid, u.vout) not in self._reserved]
            picked: list[Utxo] = []
            total = 0
            for utxo in sorted(free, key=lambda u: -u.value):
                if total >= amount and picked:
                    break
                picked.append(utxo)
                total += utxo.value
            if total < amount:
                raise InsufficientFunds(f"server wallet has {total} sats, needs {amount}")
            self._reserved.update((u.txid, u.vout) for u in picked)
            return picked

    def release(self, utxos: Sequence[Utxo]) -> None:
        """Give back coins a batch reserved but did not spend. Coins a broadcast tx spent
        stay reserved: a chain may list an output spent in its mempool as unspent."""
        with self._lock:
            self._reserved.difference_update((u.txid, u.vout) for u in utxos)

    def sign_key_path(
        self, tx: Transaction, index: int, prevouts: Sequence[tuple[bytes, int]]
    ) -> bytes:
        """BIP341 key-path signature (SIGHASH_DEFAULT) of input ``index`` of ``tx``."""
        digest = taproot_sighash(tx.serialize(), index, prevouts, SIGHASH_DEFAULT)
        return bip340.schnorr_sign(self._tweaked.secret, digest)


class InsufficientFunds(RuntimeError):
    """The server wallet cannot fund a commitment tx."""
