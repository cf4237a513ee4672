"""The issuer's own chain: block hashes, a mempool, and the height each transaction
confirmed at. Its only transactions are minting anchors; nothing leaves the process."""

from __future__ import annotations

import hashlib

__all__ = ["Chain"]


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


class Chain:
    """Blocks from height 1 up (height 0 is the genesis block), mined on demand.

    ``block_height`` is never 0: the gateway's asset checks read a height of 0 as a
    daemon that has not synced yet.
    """

    def __init__(self) -> None:
        self._hashes: list[bytes] = [_sha256d(b"arkrelay-example-assets genesis")]
        self._mempool: list[str] = []
        self._confirmed_at: dict[str, int] = {}
        self.mine(1)

    @property
    def block_height(self) -> int:
        return len(self._hashes) - 1

    @property
    def tip_hash(self) -> str:
        return self._hashes[-1][::-1].hex()

    def broadcast(self, raw: bytes) -> str:
        """Put a transaction in the mempool; returns its txid (display order, as Bitcoin)."""
        txid = _sha256d(raw)[::-1].hex()
        if txid in self._confirmed_at or txid in self._mempool:
            raise ValueError(f"transaction {txid} is already known")
        self._mempool.append(txid)
        return txid

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks; the first takes the whole mempool."""
        if blocks < 1:
            raise ValueError("mine at least one block")
        for _ in range(blocks):
            height = len(self._hashes)
            body = b"".join(bytes.fromhex(txid) for txid in self._mempool)
            self._hashes.append(_sha256d(self._hashes[-1] + height.to_bytes(4, "big") + body))
            for txid in self._mempool:
                self._confirmed_at[txid] = height
            self._mempool.clear()

    def confirmations(self, txid: str) -> int:
        """0 while in the mempool (or unknown); 1 in the tip block, and so on."""
        height = self._confirmed_at.get(txid)
        return 0 if height is None else self.block_height - height + 1

    def statistics(self) -> dict[str, int]:
        return {"block_height": self.block_height, "mempool": len(self._mempool)}
