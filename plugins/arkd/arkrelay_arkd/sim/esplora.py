"""The simulator's view of the bitcoin chain: a small Esplora REST client.

arkd reads boarding UTXOs, funds its commitment txs and broadcasts them through its wallet
and an explorer; the simulator does the same against any Esplora API (the project's chain
simulator, ``arkrelay sim chain``, or a real esplora). Only what the batch needs is here, as
the ``Chain`` protocol, so tests can hand the ledger an in-memory chain instead.

Synchronous on purpose: the simulator's gRPC servicers run in worker threads. Every call
has a timeout; a transport failure or an unexpected status is a ``ChainError``.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import httpx

__all__ = ["Chain", "ChainError", "EsploraChain", "TxStatus", "Utxo"]

#: Seconds for one request; the chain is on loopback, so a slow answer is a broken chain.
TIMEOUT = 10.0


class ChainError(RuntimeError):
    """The chain could not answer, or refused a transaction (the text is its reason)."""


@dataclasses.dataclass(frozen=True)
class Utxo:
    txid: str
    vout: int
    value: int
    confirmed: bool


@dataclasses.dataclass(frozen=True)
class TxStatus:
    confirmed: bool
    block_time: int | None = None
    block_height: int | None = None


class Chain(Protocol):
    def tx_hex(self, txid: str) -> str | None:
        """The raw tx, or None if the chain does not know it."""
        ...

    def tx_status(self, txid: str) -> TxStatus | None: ...

    def is_spent(self, txid: str, vout: int) -> bool: ...

    def utxos(self, address: str) -> list[Utxo]: ...

    def broadcast(self, tx_hex: str) -> str:
        """Send a raw tx; its txid. A refusal raises ChainError with the chain's reason."""
        ...

    def tip_height(self) -> int: ...

    def fee_rate(self) -> float:
        """sat/vB for a next-block confirmation."""
        ...

    def faucet(self, address: str, amount: int) -> tuple[str, int]:
        """Pay ``amount`` sats to ``address`` from outside (confirmed); (txid, vout)."""
        ...


class EsploraChain:
    """``Chain`` over Esplora's REST API plus the chain simulator's admin faucet."""

    def __init__(self, base_url: str, *, timeout: float = TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str) -> httpx.Response:
        try:
            return self._http.get(path)
        except httpx.HTTPError as exc:
            raise ChainError(f"esplora GET {path}: {exc}") from exc

    def _post(self, path: str, **kwargs: object) -> httpx.Response:
        try:
            return self._http.post(path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise ChainError(f"esplora POST {path}: {exc}") from exc

    @staticmethod
    def _ok(response: httpx.Response) -> httpx.Response:
        if response.status_code != 200:
            raise ChainError(
                f"esplora {response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text.strip()}"
            )
        return response

    def tx_hex(self, txid: str) -> str | None:
        response = self._get(f"/tx/{txid}/hex")
        if response.status_code in (400, 404):
            return None
        return self._ok(response).text.strip()

    def tx_status(self, txid: str) -> TxStatus | None:
        response = self._get(f"/tx/{txid}/status")
        if response.status_code in (400, 404):
            return None
        doc = self._ok(response).json()
        return TxStatus(bool(doc.get("confirmed")), doc.get("block_time"), doc.get("block_height"))

    def is_spent(self, txid: str, vout: int) -> bool:
        doc = self._ok(self._get(f"/tx/{txid}/outspend/{vout}")).json()
        return bool(doc.get("spent"))

    def utxos(self, address: str) -> list[Utxo]:
        docs = self._ok(self._get(f"/address/{address}/utxo")).json()
        return [
            Utxo(d["txid"], int(d["vout"]), int(d["value"]), bool(d["status"]["confirmed"]))
            for d in docs
        ]

    def broadcast(self, tx_hex: str) -> str:
        response = self._post("/tx", content=tx_hex, headers={"content-type": "text/plain"})
        if response.status_code != 200:
            raise ChainError(f"broadcast refused: {response.text.strip()}")
        return response.text.strip()

    def tip_height(self) -> int:
        return int(self._ok(self._get("/blocks/tip/height")).text.strip())

    def fee_rate(self) -> float:
        estimates = self._ok(self._get("/fee-estimates")).json()
        # Esplora keys targets as strings; "1" is the next block.
        return float(estimates.get("1") or min(estimates.values(), default=1.0))

    def faucet(self, address: str, amount: int) -> tuple[str, int]:
        doc = self._ok(self._post("/sim/faucet", json={"address": address, "amount": amount}))
        body = doc.json()
        return body["txid"], int(body["vout"])

    def mine(self, blocks: int = 1) -> int:
        return int(self._ok(self._post("/sim/mine", json={"blocks": blocks})).json()["height"])
