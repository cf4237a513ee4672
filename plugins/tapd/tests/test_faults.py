"""The tapd client against the simulator over real gRPC: error mapping (2005, 5004, 5003),
the breaker across a real stop, and an asset payment whose outcome is unknown."""

from __future__ import annotations

import pytest
import trio
from arkrelay_lnd.client import LndBackend
from arkrelay_lnd.sim import LndSimulator

from arkrelay_core.codes import ErrorCode
from arkrelay_core.config import Duration, Secret
from arkrelay_core.errors import (
    AssetBackendFailure,
    BackendUnavailable,
    CircuitOpen,
    InvoiceInvalid,
    UnknownAsset,
)
from arkrelay_core.interfaces import PaymentStatus
from arkrelay_tapd.sim import TapdSimulator

from .conftest import Connect


async def test_a_wrong_macaroon_is_an_asset_backend_failure(connect: Connect) -> None:
    backend = await connect(macaroon=Secret("ff" * 16))
    with pytest.raises(AssetBackendFailure) as refused:
        await backend.list_balances()
    assert refused.value.code == ErrorCode.ASSET_BACKEND_ERROR


async def test_breaker_and_unavailable_codes(
    sims: tuple[LndSimulator, TapdSimulator], connect: Connect
) -> None:
    _, tapd = sims
    backend = await connect(retries=0, breaker_reset=Duration(1))
    tapd.stop("gateway")
    for _ in range(5):
        with pytest.raises(BackendUnavailable) as down:
            await backend.get_info()
        assert down.value.code == ErrorCode.ASSET_BACKEND_ERROR
    with pytest.raises(CircuitOpen):
        await backend.get_info()
    tapd.start("gateway")
    await trio.sleep(1.1)
    assert (await backend.get_info()).network == "regtest"


async def test_bad_asset_ids_and_invoices_map_to_their_codes(connect: Connect) -> None:
    backend = await connect()
    with pytest.raises(UnknownAsset):
        await backend.fetch_asset_meta("not hex")
    gbtc = await backend.mint_asset("gBTC", 1_000)
    with pytest.raises(InvoiceInvalid):
        await backend.pay_asset_invoice(
            gbtc.asset_id, "lnbcrt1junk", fee_limit_sat=1, timeout_seconds=1
        )


async def test_an_asset_payment_stuck_in_flight_is_pending_then_resolves(
    sims: tuple[LndSimulator, TapdSimulator], connect: Connect, outside_lnd: LndBackend
) -> None:
    lnd, _ = sims
    backend = await connect()
    gbtc = await backend.mint_asset("gBTC", 1_000)
    lnd.network.mine()
    bill = await outside_lnd.create_invoice(200_000, memo="", expiry=600)
    lnd.node("gateway").stuck = True
    pending = await backend.pay_asset_invoice(
        gbtc.asset_id, bill.bolt11, fee_limit_sat=10, timeout_seconds=1
    )
    assert pending.status is PaymentStatus.PENDING
    # The units stay reserved: a second asset payment cannot spend them twice.
    assert [b.balance for b in await backend.list_balances()] == [1_000]
    lnd.network.release(lnd.node("gateway"), bytes.fromhex(bill.payment_hash), succeed=True)
    assert [b.balance for b in await backend.list_balances()] == [800]


async def test_insufficient_asset_balance_is_refused_not_pending(
    connect: Connect, outside_lnd: LndBackend
) -> None:
    backend = await connect()
    gbtc = await backend.mint_asset("gBTC", 10)  # unconfirmed: nothing spendable yet
    bill = await outside_lnd.create_invoice(50_000, memo="", expiry=600)
    with pytest.raises(AssetBackendFailure, match="insufficient"):
        await backend.pay_asset_invoice(
            gbtc.asset_id, bill.bolt11, fee_limit_sat=10, timeout_seconds=1
        )
    # Nothing was sent, so a later attempt is allowed (and refused the same way).
    with pytest.raises(AssetBackendFailure):
        await backend.pay_asset_invoice(
            gbtc.asset_id, bill.bolt11, fee_limit_sat=10, timeout_seconds=1
        )
