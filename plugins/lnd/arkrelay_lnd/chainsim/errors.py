"""What the chain answers when it refuses a transaction: bitcoind's reject reason and the
JSON-RPC error code ``sendrawtransaction`` gives with it, which Esplora relays."""

from __future__ import annotations

import json

__all__ = ["MISSING_INPUTS", "REJECTED", "Refusal", "ScriptFailure"]

#: rpc/protocol.h: RPC_TRANSACTION_ERROR (missing inputs) and RPC_TRANSACTION_REJECTED.
MISSING_INPUTS = -25
REJECTED = -26
ALREADY_IN_CHAIN = -27
DESERIALIZATION = -22


class Refusal(Exception):
    """A transaction (or package) the mempool will not take, with bitcoind's reason."""

    def __init__(self, reason: str, code: int = REJECTED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code

    def esplora_text(self, method: str = "sendrawtransaction") -> str:
        """The body Esplora answers with its HTTP 400: the bitcoind RPC error it relays."""
        error = json.dumps({"code": self.code, "message": self.reason}, separators=(",", ":"))
        return f"{method} RPC error: {error}"


class ScriptFailure(Refusal):
    """An input's script failed: under the consensus rules (``mandatory``) or only under
    bitcoind's stricter relay policy (validation.cpp ``CheckInputScripts``)."""

    def __init__(self, error: str, *, mandatory: bool = True) -> None:
        prefix = (
            "mandatory-script-verify-flag-failed"
            if mandatory
            else "non-mandatory-script-verify-flag"
        )
        super().__init__(f"{prefix} ({error})")
        self.error = error
        self.mandatory = mandatory
