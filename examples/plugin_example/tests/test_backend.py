"""What the contract suite does not pin down: the block clock, the confirmations setting,
proofs across issuers, refusals, and the settings as the gateway's config loader reads
them."""

from __future__ import annotations

import msgspec
import pytest
import trio
from arkrelay_core.codes import ErrorCode
from arkrelay_core.config import ConfigError, Duration, Secret, load_config_text
from arkrelay_core.errors import AssetBackendFailure, UnknownAsset, UnsupportedOperation
from arkrelay_core.nostr import generate_secret_key, xonly_public_key
from example_harness import context

from arkrelay_example_assets.backend import ExampleAssetBackend
from arkrelay_example_assets.plugin import arkrelay_register_backends
from arkrelay_example_assets.proofs import MAGIC, Genesis, asset_id_of, encode_proof
from arkrelay_example_assets.settings import ExampleAssetsSettings

MANUAL = ExampleAssetsSettings(block_interval=Duration(0))


def _backend(settings: ExampleAssetsSettings = MANUAL, name: str = "assets") -> ExampleAssetBackend:
    return ExampleAssetBackend(settings, context(name))


async def _balances(backend: ExampleAssetBackend) -> dict[str, int]:
    return {b.asset_id: b.balance for b in await backend.list_balances()}


async def test_serve_mines_a_block_every_interval(autojump_clock: trio.abc.Clock) -> None:
    backend = _backend(ExampleAssetsSettings(block_interval=Duration(60), confirmations=2))
    meta = await backend.mint_asset("gBTC", 1_000)
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        start = backend.chain.block_height
        await trio.sleep(61)
        assert backend.chain.block_height == start + 1
        # One confirmation of the two the settings ask for: not counted yet.
        assert await _balances(backend) == {}
        assert backend.statistics()["mints_pending"] == 1
        await trio.sleep(60)
        assert backend.chain.block_height == start + 2
        assert await _balances(backend) == {meta.asset_id: 1_000}
        assert backend.statistics()["mints_pending"] == 0
        nursery.cancel_scope.cancel()


async def test_a_zero_interval_never_mines(autojump_clock: trio.abc.Clock) -> None:
    backend = _backend()
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        await trio.sleep(86_400)
        assert backend.chain.block_height == 1
        nursery.cancel_scope.cancel()


async def test_two_mints_of_one_name_are_two_assets() -> None:
    backend = _backend()
    first = await backend.mint_asset("USDX", 10, decimals=2)
    second = await backend.mint_asset("USDX", 20, decimals=2)
    assert first.asset_id != second.asset_id
    backend.chain.mine(1)
    assert await _balances(backend) == {first.asset_id: 10, second.asset_id: 20}
    assert (await backend.fetch_asset_meta(second.asset_id.upper())).asset_id == second.asset_id


@pytest.mark.parametrize(
    ("name", "amount", "decimals", "problem"),
    [
        ("", 1, 0, "a name has 1 to 64 characters"),
        ("x" * 65, 1, 0, "a name has 1 to 64 characters"),
        ("gBTC", 0, 0, "the amount must be at least 1 and below 2**63, not 0"),
        ("gBTC", 2**63, 0, "the amount must be at least 1 and below 2**63"),
        ("gBTC", 1, 17, "decimals must be 0 to 16, not 17"),
    ],
)
async def test_mint_refusals_leave_nothing_behind(
    name: str, amount: int, decimals: int, problem: str
) -> None:
    backend = _backend()
    with pytest.raises(AssetBackendFailure, match=problem.replace("*", r"\*")) as refused:
        await backend.mint_asset(name, amount, decimals=decimals)
    assert refused.value.code is ErrorCode.ASSET_BACKEND_ERROR
    assert backend.statistics()["mempool"] == 0
    assert backend.statistics()["assets_known"] == 0


async def test_a_proof_travels_from_issuer_to_issuer() -> None:
    issuer, gateway, third = _backend(name="a"), _backend(name="b"), _backend(name="c")
    meta = await issuer.mint_asset("EURX", 700, decimals=2)
    with pytest.raises(AssetBackendFailure, match="not confirmed yet"):
        issuer.export_proof(meta.asset_id)
    issuer.chain.mine(1)
    proof = issuer.export_proof(meta.asset_id)
    assert await gateway.import_proof(proof) == meta
    # Imported, not held; importing again changes nothing.
    assert await _balances(gateway) == {}
    assert await gateway.import_proof(proof) == meta
    assert gateway.statistics()["proofs_imported"] == 1
    # The importer passes the issuer's proof on unchanged.
    assert await third.import_proof(gateway.export_proof(meta.asset_id)) == meta


async def test_a_genesis_signed_by_someone_else_is_another_asset() -> None:
    issuer, gateway = _backend(name="a"), _backend(name="b")
    meta = await issuer.mint_asset("EURX", 700)
    issuer.chain.mine(1)
    genesis = msgspec.msgpack.decode(issuer.export_proof(meta.asset_id)[len(MAGIC) :])[0]
    forger = generate_secret_key()
    claimed = Genesis(*genesis[:5], xonly_public_key(forger))
    forged = await gateway.import_proof(encode_proof(claimed, forger))
    assert forged.asset_id == asset_id_of(claimed).hex() != meta.asset_id
    with pytest.raises(UnknownAsset):
        await gateway.fetch_asset_meta(meta.asset_id)


async def test_an_altered_genesis_does_not_verify() -> None:
    issuer, gateway = _backend(name="a"), _backend(name="b")
    meta = await issuer.mint_asset("EURX", 700)
    issuer.chain.mine(1)
    proof = issuer.export_proof(meta.asset_id)
    # 700 is msgpack 0xcd 0x02 0xbc; more units under the same signature.
    inflated = proof.replace(b"\xcd\x02\xbc", b"\xcd\x02\xbd", 1)
    assert inflated != proof
    for bad in (inflated, b"", MAGIC + b"\x92", proof + b"\x00"):
        with pytest.raises(AssetBackendFailure, match="proof refused"):
            await gateway.import_proof(bad)
    assert gateway.statistics()["assets_known"] == 0


async def test_unknown_and_malformed_ids_are_unknown_assets() -> None:
    backend = _backend()
    for asset_id in ("", "zz" * 32, "00" * 31, "00" * 32):
        with pytest.raises(UnknownAsset) as unknown:
            await backend.fetch_asset_meta(asset_id)
        assert unknown.value.code is ErrorCode.UNKNOWN_ASSET
        with pytest.raises(UnknownAsset):
            backend.export_proof(asset_id)


async def test_asset_channel_calls_are_unsupported() -> None:
    backend = _backend()
    meta = await backend.mint_asset("gBTC", 1_000)
    assert "asset_channels" not in backend.features
    with pytest.raises(UnsupportedOperation):
        await backend.create_asset_invoice(meta.asset_id, 10, memo="", expiry=60)
    with pytest.raises(UnsupportedOperation):
        await backend.pay_asset_invoice(
            meta.asset_id, "lnbcrt1", fee_limit_sat=1, timeout_seconds=1
        )


def _resolve(role: str, name: str) -> type[msgspec.Struct]:
    [spec] = arkrelay_register_backends()
    assert (role, name) == (spec.role, spec.name)
    return spec.settings_type


def _load(table: str, environ: dict[str, str] | None = None) -> msgspec.Struct:
    config = load_config_text(
        '[backend.assets]\nplugin = "example-assets"\n' + table,
        source="gw.toml",
        settings_resolver=_resolve,
        environ=environ or {},
    )
    return config.backends["assets"].settings


def test_settings_as_the_gateway_reads_them() -> None:
    key = generate_secret_key()
    settings = _load(
        'block_interval = "10m"\nconfirmations = 3\nissuer_key = "env:ISSUER"\n',
        {"ISSUER": key.hex()},
    )
    assert settings == ExampleAssetsSettings(
        block_interval=Duration(600), confirmations=3, issuer_key=Secret(key.hex())
    )
    assert isinstance(settings, ExampleAssetsSettings)
    backend = ExampleAssetBackend(settings, context("assets"))
    assert backend.issuer == xonly_public_key(key)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("confirmation = 3\n", "backend.assets.confirmation"),
        ("confirmations = 0\n", "backend.assets.confirmations"),
        ('block_interval = "soon"\n', "backend.assets.block_interval"),
        ('issuer_key = "abcd"\n', "backend.assets"),
    ],
)
def test_settings_errors_name_the_key(table: str, key: str) -> None:
    with pytest.raises(ConfigError) as bad:
        _load(table)
    assert bad.value.key == key, bad.value
