"""BOLT11 payment requests through the ``bolt11`` package: decoding (the client checks an
invoice and refuses a double payment before any RPC) and signed encoding (the simulator)."""

from __future__ import annotations

import bolt11
from bolt11 import Bolt11, MilliSatoshi, TagChar, Tags

from arkrelay_core.errors import InvoiceInvalid
from arkrelay_core.interfaces import DecodedInvoice

__all__ = ["HRP_NETWORKS", "decode", "encode"]

#: BOLT11 currency prefix -> bitcoin network name (as lnd's GetInfo reports it).
HRP_NETWORKS = {"bc": "mainnet", "tb": "testnet", "tbs": "signet", "bcrt": "regtest"}
_CURRENCIES = {network: hrp for hrp, network in HRP_NETWORKS.items()}

#: BOLT11's default when an invoice has no ``x`` field.
DEFAULT_EXPIRY = 3600


def decode(payment_request: str) -> DecodedInvoice:
    """Parse and check the signature of a BOLT11 invoice (InvoiceInvalid if it is not one)."""
    text = payment_request.strip()
    if text.lower().startswith("lightning:"):
        text = text[len("lightning:") :]
    try:
        invoice = bolt11.decode(text)
    except (bolt11.Bolt11Exception, ValueError, TypeError, KeyError) as exc:
        raise InvoiceInvalid(f"not a BOLT11 invoice: {exc or type(exc).__name__}") from exc
    network = HRP_NETWORKS.get(invoice.currency)
    if network is None:
        raise InvoiceInvalid(f"unknown BOLT11 currency prefix {invoice.currency!r}")
    return DecodedInvoice(
        payment_hash=invoice.payment_hash,
        amount_msat=int(invoice.amount_msat or 0),
        destination=invoice.payee or "",
        timestamp=invoice.date,
        expiry=invoice.expiry,
        network=network,
        description=invoice.description or "",
    )


def encode(
    *,
    network: str,
    node_secret: bytes,
    payment_hash: bytes,
    payment_secret: bytes,
    amount_msat: int,
    memo: str,
    timestamp: int,
    expiry: int,
    cltv_expiry: int = 80,
) -> str:
    """A BOLT11 invoice signed with ``node_secret`` (so its payee is that node's key)."""
    tags = Tags()
    tags.add(TagChar.payment_hash, payment_hash.hex())
    tags.add(TagChar.payment_secret, payment_secret.hex())
    tags.add(TagChar.description, memo)
    tags.add(TagChar.expire_time, expiry)
    tags.add(TagChar.min_final_cltv_expiry, cltv_expiry)
    invoice = Bolt11(
        currency=_CURRENCIES[network],
        date=timestamp,
        tags=tags,
        amount_msat=MilliSatoshi(amount_msat) if amount_msat else None,
    )
    return bolt11.encode(invoice, node_secret.hex())
