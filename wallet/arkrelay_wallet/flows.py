"""docs/flows.md: the event sequence of every flow, written from a real demo run.

Ids, keys, signatures, PSBTs, invoices and times differ on every run; they are replaced by
named placeholders (``<alice>``, ``<txid>``, ``<psbt>``, ...) so the page shows the shape
and the figures of each message, which are the same every time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from arkrelay_core.protocol import Kind

from .demo import Record

__all__ = ["render_flows"]

_TIME_KEYS = {"expires_at", "timestamp", "created_at", "period_start", "period_end"}
_PATTERNS = (
    (re.compile(r"cHNidP8[A-Za-z0-9+/=]+"), "<psbt base64>"),
    (re.compile(r"lnbcrt[0-9a-z]+"), "<bolt11>"),
    (re.compile(r"sess_[0-9a-f]{24}"), "sess_<id>"),
    (re.compile(r"http://127\.0\.0\.1:\d+"), "http://127.0.0.1:<port>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{128}\b"), "<signature>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<hex32>"),
)

_KIND_TITLES = {
    Kind.SERVICE_REQUEST: "31500 service request",
    Kind.SERVICE_RESPONSE: "31501 service response",
    Kind.NOTIFICATION: "31502 notification",
    Kind.INTENT: "31510 intent",
    Kind.CHALLENGE: "31511 signing challenge",
    Kind.SIGNING_RESPONSE: "31512 signing response",
    Kind.CONFIRMATION: "31340 confirmation",
    Kind.FAILURE: "31341 failure",
}


def render_flows(records: list[Record], names: Mapping[str, str]) -> str:
    """The page: per demo step, per wallet, each event in the order that wallet saw it.

    ``names`` maps pubkeys (the wallets', the gateway's) to the names the page uses.
    """

    def scrub(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: scrub(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v, key) for v in value]
        if isinstance(value, int) and key in _TIME_KEYS:
            return "<unix time>"
        if isinstance(value, str):
            for pubkey, name in names.items():
                value = value.replace(pubkey, f"<{name}>")
            for pattern, placeholder in _PATTERNS:
                value = pattern.sub(placeholder, value)
        return value

    lines = [
        "# Flows: the events on the wire",
        "",
        "Written by `uv run --all-packages python scripts/gen_flows.py` from a run of",
        "`arkrelay demo` (embedded defaults: the gateway's relay endpoint, simulated arkd,",
        "lnd and tapd). Each step lists, per wallet, the events it sent (→) and received (←)",
        "in order, with their tags and their (decrypted) content. Keys are named",
        "(`<alice>`, `<gateway>`); ids, signatures, PSBTs, invoices and times are",
        "placeholders. PROTOCOL.md is the contract; this page shows it in motion.",
    ]
    steps: dict[str, list[Record]] = {}
    for record in records:
        steps.setdefault(record.step, []).append(record)
    for title, step_records in steps.items():
        lines += ["", f"## {title}"]
        for wallet in sorted({r.wallet for r in step_records}):
            lines += ["", f"### {wallet}", ""]
            for i, r in enumerate((r for r in step_records if r.wallet == wallet), 1):
                arrow = "→ gateway" if r.direction == "->" else "← gateway"
                title_ = _KIND_TITLES.get(r.kind, str(r.kind))
                tags = [[t[0], "<unix time>"] if t[:1] == ["expiration"] else t for t in r.tags]
                tags_text = msgspec.json.encode(scrub(tags)).decode()
                body = msgspec.json.encode(scrub(r.content)).decode()
                lines += [
                    f"{i}. {arrow}: **{title_}**, tags `{tags_text}`",
                    "",
                    "   ```json",
                    f"   {body}",
                    "   ```",
                ]
    return "\n".join(lines) + "\n"
