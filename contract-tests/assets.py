"""The AssetBackend conformance suite: any implementation runs it by passing a maker.

    async def test_my_backend():
        await check_asset_backend(my_maker)

``maker()`` is an async context manager yielding an ``AssetHarness``: the gateway's
running asset backend, a Lightning node of the outside world that pays its asset invoices
and bills it, and the powers a real deployment arranges by hand (mining, a proof of an
asset issued elsewhere). A power left ``None`` skips the checks that need it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import pytest
from capabilities import check_capabilities
from kit import run_all, run_named

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import ArkRelayError, InvoiceInvalid, UnknownAsset
from arkrelay_core.interfaces import AssetBackend, InvoiceState, LightningBackend, PaymentStatus

__all__ = ["ASSET_CHECKS", "AssetHarness", "Maker", "check_asset_backend"]

TIMEOUT = 60
UNITS = 1_000_000


@dataclasses.dataclass
class AssetHarness:
    backend: AssetBackend
    #: A node of the outside world on the same Lightning network.
    payer: LightningBackend | None = None
    #: Mine blocks (confirms minting transactions).
    mine: Callable[[int], Awaitable[None]] | None = None
    #: (asset id, issuance proof) of an asset someone else issued.
    foreign_proof: Callable[[], Awaitable[tuple[str, bytes]]] | None = None


Maker = Callable[[], AbstractAsyncContextManager[AssetHarness]]


def _need(harness: AssetHarness, *powers: str) -> None:
    for power in powers:
        if getattr(harness, power) is None:
            pytest.skip(f"this backend's harness has no {power.replace('_', ' ')}")


def _need_channels(harness: AssetHarness) -> None:
    if "asset_channels" not in harness.backend.features:
        pytest.skip("this backend has no asset channels")


def _expect(exc: ArkRelayError, code: ErrorCode) -> None:
    assert exc.code == code, f"expected {code.value} ({code.name}), got {exc.code.value}: {exc}"


async def _minted(h: AssetHarness, units: int = UNITS) -> str:
    _need(h, "mine")
    assert h.mine is not None
    meta = await h.backend.mint_asset(f"g{os.urandom(3).hex()}", units)
    await h.mine(1)
    return meta.asset_id


async def _balance(backend: AssetBackend, asset_id: str) -> int:
    return next((b.balance for b in await backend.list_balances() if b.asset_id == asset_id), 0)


async def check_info(h: AssetHarness) -> None:
    info = await h.backend.get_info()
    assert info.version and info.network and info.block_height > 0
    assert isinstance(h.backend.features, frozenset)
    assert isinstance(dict(h.backend.statistics()), dict)
    check_capabilities(h.backend)


async def check_mint_and_balance(h: AssetHarness) -> None:
    _need(h, "mine")
    assert h.mine is not None
    name = f"gBTC{os.urandom(2).hex()}"
    meta = await h.backend.mint_asset(name, UNITS, decimals=0)
    assert len(bytes.fromhex(meta.asset_id)) == 32 and meta.name == name
    await h.mine(1)
    assert [
        (b.name, b.balance) for b in await h.backend.list_balances() if b.asset_id == meta.asset_id
    ] == [(name, UNITS)]
    fetched = await h.backend.fetch_asset_meta(meta.asset_id)
    assert (fetched.asset_id, fetched.name, fetched.decimals) == (meta.asset_id, name, 0)


async def check_unknown_asset(h: AssetHarness) -> None:
    stranger = os.urandom(32).hex()
    with pytest.raises(UnknownAsset) as unknown:
        await h.backend.fetch_asset_meta(stranger)
    _expect(unknown.value, ErrorCode.UNKNOWN_ASSET)
    if "asset_channels" in h.backend.features:
        with pytest.raises(UnknownAsset):
            await h.backend.create_asset_invoice(stranger, 10, memo="", expiry=60)


async def check_asset_invoice_paid(h: AssetHarness) -> None:
    _need_channels(h)
    _need(h, "payer")
    assert h.payer is not None
    asset_id = await _minted(h)
    invoice = await h.backend.create_asset_invoice(asset_id, 500, memo="lift", expiry=600)
    assert invoice.state is InvoiceState.OPEN and invoice.amount_msat > 0
    paid = await h.payer.pay_invoice(invoice.bolt11, fee_limit_sat=1_000, timeout_seconds=30)
    assert paid.status is PaymentStatus.SUCCEEDED, paid
    assert await _balance(h.backend, asset_id) == UNITS + 500


async def check_pay_asset_invoice(h: AssetHarness) -> None:
    _need_channels(h)
    _need(h, "payer")
    assert h.payer is not None
    asset_id = await _minted(h)
    bill = await h.payer.create_invoice(300_000, memo="land", expiry=600)
    paid = await h.backend.pay_asset_invoice(
        asset_id, bill.bolt11, fee_limit_sat=1_000, timeout_seconds=30
    )
    assert paid.status is PaymentStatus.SUCCEEDED, paid
    assert (await h.payer.lookup_invoice(bill.payment_hash)).state is InvoiceState.SETTLED
    assert UNITS - 400 <= await _balance(h.backend, asset_id) <= UNITS - 300
    with pytest.raises(InvoiceInvalid):
        await h.backend.pay_asset_invoice(
            asset_id, bill.bolt11, fee_limit_sat=1_000, timeout_seconds=30
        )


async def check_import_proof(h: AssetHarness) -> None:
    _need(h, "foreign_proof")
    assert h.foreign_proof is not None
    asset_id, proof = await h.foreign_proof()
    with pytest.raises(UnknownAsset):
        await h.backend.fetch_asset_meta(asset_id)
    tampered = proof[:-2] + bytes([proof[-2] ^ 1]) + proof[-1:]
    with pytest.raises(ArkRelayError):
        await h.backend.import_proof(tampered)
    meta = await h.backend.import_proof(proof)
    assert meta.asset_id == asset_id and meta.name
    fetched = await h.backend.fetch_asset_meta(asset_id)
    assert (fetched.asset_id, fetched.name) == (asset_id, meta.name)


ASSET_CHECKS: dict[str, Callable[[AssetHarness], Awaitable[None]]] = {
    "info": check_info,
    "mint_and_balance": check_mint_and_balance,
    "unknown_asset": check_unknown_asset,
    "asset_invoice_paid": check_asset_invoice_paid,
    "pay_asset_invoice": check_pay_asset_invoice,
    "import_proof": check_import_proof,
}


async def run_check(maker: Maker, name: str) -> None:
    await run_named(ASSET_CHECKS, maker, name, TIMEOUT)


async def check_asset_backend(maker: Maker) -> None:
    """Run every check, each on a fresh harness (skipped checks are skipped, not failed)."""
    await run_all(ASSET_CHECKS, maker, TIMEOUT)
