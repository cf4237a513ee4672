"""The ArkBackend conformance suite: any implementation runs it by passing a maker.

    async def test_my_backend():
        await check_ark_backend(my_maker)

``maker()`` is an async context manager yielding an ``ArkHarness``: a running backend plus
the few powers a test needs that the interface does not offer (funding a key, expiring a
VTXO, paying from the gateway's inventory). A power left ``None`` skips the checks that
need it. Like trio's stream conformance checks, each check gets a fresh harness.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import msgspec
import pytest
import trio
from capabilities import check_capabilities

from arkrelay_core.codes import ErrorCode
from arkrelay_core.errors import ArkRelayError
from arkrelay_core.interfaces import (
    ArkBackend,
    FinalizedTx,
    InputSignature,
    TxOutputSpec,
    Vtxo,
)
from arkrelay_core.nostr import bip340

__all__ = ["ARK_CHECKS", "ArkHarness", "Maker", "check_ark_backend"]

TIMEOUT = 30


@dataclasses.dataclass
class ArkHarness:
    backend: ArkBackend
    #: Give ``owner`` a spendable VTXO of exactly ``amount`` sats.
    fund: Callable[[str, int], Awaitable[Vtxo]] | None = None
    #: Make a VTXO expired (its batch expiry passed, not yet swept).
    expire: Callable[[Vtxo], Awaitable[None]] | None = None
    #: The key owning the gateway's inventory, and paying from it.
    inventory_owner: str | None = None
    inventory_send: Callable[[Sequence[TxOutputSpec]], Awaitable[FinalizedTx]] | None = None


Maker = Callable[[], AbstractAsyncContextManager[ArkHarness]]


class _Key:
    def __init__(self) -> None:
        self.secret = bip340.generate_secret_key()
        self.pub = bip340.xonly_public_key(self.secret).hex()

    def sign(self, sighash_hex: str) -> str:
        return bip340.schnorr_sign(self.secret, bytes.fromhex(sighash_hex)).hex()


def _need(harness: ArkHarness, *powers: str) -> None:
    for power in powers:
        if getattr(harness, power) is None:
            pytest.skip(f"this backend's harness cannot {power.replace('_', ' ')}")


def _expect(exc: ArkRelayError, code: ErrorCode) -> None:
    assert exc.code == code, f"expected {code.value} ({code.name}), got {exc.code.value}: {exc}"


async def _transfer(
    backend: ArkBackend, key: _Key, inputs: Sequence[Vtxo], outputs: Sequence[TxOutputSpec]
) -> FinalizedTx:
    built = await backend.build_offchain_tx(inputs, outputs)
    signed = backend.add_signatures(
        built.ark_tx,
        [InputSignature(s.input_index, key.pub, key.sign(s.sighash)) for s in built.to_sign],
    )
    submitted = await backend.submit_tx(signed, built.checkpoint_txs)
    finals = [
        backend.add_signatures(
            s.psbt, [InputSignature(s.input_index, key.pub, key.sign(s.sighash))]
        )
        for s in submitted.to_sign
    ]
    return await backend.finalize_tx(submitted.ark_txid, finals)


async def _sign_and_submit(backend: ArkBackend, key: _Key, inputs: Sequence[Vtxo], to: str) -> None:
    built = await backend.build_offchain_tx(
        inputs, [TxOutputSpec(to, sum(v.amount for v in inputs))]
    )
    signed = backend.add_signatures(
        built.ark_tx,
        [InputSignature(s.input_index, key.pub, key.sign(s.sighash)) for s in built.to_sign],
    )
    await backend.submit_tx(signed, built.checkpoint_txs)


# ---------------------------------------------------------------------------------- checks


async def check_info(h: ArkHarness) -> None:
    info = await h.backend.get_info()
    assert info.network
    assert len(bytes.fromhex(info.signer_pubkey)) == 32
    assert info.unilateral_exit_delay > 0
    assert info.dust >= 0
    assert isinstance(h.backend.features, frozenset)
    assert isinstance(dict(h.backend.statistics()), dict)
    check_capabilities(h.backend)


async def check_list_vtxos(h: ArkHarness) -> None:
    _need(h, "fund")
    assert h.fund is not None
    alice, bob = _Key(), _Key()
    funded = await h.fund(alice.pub, 5_000)
    mine = await h.backend.list_vtxos(alice.pub)
    assert [(v.vtxo_id, v.amount, v.owner, v.status) for v in mine] == [
        (funded.vtxo_id, 5_000, alice.pub, "spendable")
    ]
    assert await h.backend.list_vtxos(bob.pub) == []
    [again] = await h.backend.get_vtxos([funded.vtxo_id])
    assert (again.vtxo_id, again.amount, again.script) == (funded.vtxo_id, 5_000, funded.script)


async def check_transfer(h: ArkHarness) -> None:
    _need(h, "fund")
    assert h.fund is not None
    alice, bob = _Key(), _Key()
    funded = await h.fund(alice.pub, 5_000)
    built = await h.backend.build_offchain_tx(
        [funded], [TxOutputSpec(bob.pub, 3_000), TxOutputSpec(alice.pub, 2_000)]
    )
    assert [(s.tx_role, s.vtxo_id, s.owner) for s in built.to_sign] == [
        ("ark_tx", funded.vtxo_id, alice.pub)
    ]
    assert len(built.checkpoint_txs) == 1
    signed = h.backend.add_signatures(
        built.ark_tx, [InputSignature(0, alice.pub, alice.sign(built.to_sign[0].sighash))]
    )
    submitted = await h.backend.submit_tx(signed, built.checkpoint_txs)
    assert submitted.ark_txid == built.ark_txid
    assert [(s.tx_role, s.vtxo_id, s.owner) for s in submitted.to_sign] == [
        ("checkpoint", funded.vtxo_id, alice.pub)
    ]
    # Submitted but not finalized: the input is locked, nothing is created yet.
    assert funded.vtxo_id not in {v.vtxo_id for v in await h.backend.list_vtxos(alice.pub)}
    assert await h.backend.list_vtxos(bob.pub) == []
    final = [
        h.backend.add_signatures(
            s.psbt, [InputSignature(s.input_index, alice.pub, alice.sign(s.sighash))]
        )
        for s in submitted.to_sign
    ]
    done = await h.backend.finalize_tx(submitted.ark_txid, final)
    assert done.spent == (funded.vtxo_id,)
    assert sorted((v.owner, v.amount) for v in done.created) == sorted(
        [(bob.pub, 3_000), (alice.pub, 2_000)]
    )
    assert [(v.amount, v.owner) for v in await h.backend.list_vtxos(bob.pub)] == [(3_000, bob.pub)]
    assert [v.amount for v in await h.backend.list_vtxos(alice.pub)] == [2_000]


async def check_resubmit_is_idempotent(h: ArkHarness) -> None:
    _need(h, "fund")
    assert h.fund is not None
    alice, bob = _Key(), _Key()
    funded = await h.fund(alice.pub, 4_000)
    built = await h.backend.build_offchain_tx([funded], [TxOutputSpec(bob.pub, 4_000)])
    signed = h.backend.add_signatures(
        built.ark_tx, [InputSignature(0, alice.pub, alice.sign(built.to_sign[0].sighash))]
    )
    first = await h.backend.submit_tx(signed, built.checkpoint_txs)
    second = await h.backend.submit_tx(signed, built.checkpoint_txs)
    assert second == first
    final = [
        h.backend.add_signatures(s.psbt, [InputSignature(0, alice.pub, alice.sign(s.sighash))])
        for s in second.to_sign
    ]
    done = await h.backend.finalize_tx(second.ark_txid, final)
    assert [v.amount for v in done.created] == [4_000]


async def check_double_spend_rejected(h: ArkHarness) -> None:
    _need(h, "fund")
    assert h.fund is not None
    alice, bob, carol = _Key(), _Key(), _Key()
    funded = await h.fund(alice.pub, 3_000)
    # While the first spend is only submitted, and after it is final.
    await _sign_and_submit(h.backend, alice, [funded], bob.pub)
    with pytest.raises(ArkRelayError) as pending:
        await _sign_and_submit(h.backend, alice, [funded], carol.pub)
    _expect(pending.value, ErrorCode.VTXO_ALREADY_SPENT)

    other = await h.fund(alice.pub, 2_000)
    await _transfer(h.backend, alice, [other], [TxOutputSpec(bob.pub, 2_000)])
    with pytest.raises(ArkRelayError) as final:
        await _sign_and_submit(h.backend, alice, [other], carol.pub)
    _expect(final.value, ErrorCode.VTXO_ALREADY_SPENT)


async def check_wrong_signature_rejected(h: ArkHarness) -> None:
    _need(h, "fund")
    assert h.fund is not None
    alice, bob = _Key(), _Key()
    funded = await h.fund(alice.pub, 3_000)
    built = await h.backend.build_offchain_tx([funded], [TxOutputSpec(bob.pub, 3_000)])
    wrong = alice.sign("00" * 32)
    with pytest.raises(ArkRelayError) as exc:
        h.backend.add_signatures(built.ark_tx, [InputSignature(0, alice.pub, wrong)])
    _expect(exc.value, ErrorCode.INVALID_SIGNING_RESPONSE)
    # Nothing was spent by the attempt.
    assert [v.vtxo_id for v in await h.backend.list_vtxos(alice.pub)] == [funded.vtxo_id]


async def check_not_owner_rejected(h: ArkHarness) -> None:
    _need(h, "fund")
    assert h.fund is not None
    alice, mallory = _Key(), _Key()
    funded = await h.fund(alice.pub, 3_000)
    claimed = msgspec.structs.replace(funded, owner=mallory.pub)
    with pytest.raises(ArkRelayError) as by_claim:
        await h.backend.build_offchain_tx([claimed], [TxOutputSpec(mallory.pub, 3_000)])
    _expect(by_claim.value, ErrorCode.VTXO_NOT_OWNED)

    built = await h.backend.build_offchain_tx([funded], [TxOutputSpec(mallory.pub, 3_000)])
    forged = mallory.sign(built.to_sign[0].sighash)
    with pytest.raises(ArkRelayError) as by_key:
        h.backend.add_signatures(built.ark_tx, [InputSignature(0, mallory.pub, forged)])
    _expect(by_key.value, ErrorCode.VTXO_NOT_OWNED)


async def check_expired_rejected(h: ArkHarness) -> None:
    _need(h, "fund", "expire")
    assert h.fund is not None and h.expire is not None
    alice, bob = _Key(), _Key()
    funded = await h.fund(alice.pub, 3_000)
    await h.expire(funded)
    with pytest.raises(ArkRelayError) as exc:
        await _sign_and_submit(h.backend, alice, [funded], bob.pub)
    _expect(exc.value, ErrorCode.VTXO_EXPIRED)


async def check_inventory_send(h: ArkHarness) -> None:
    _need(h, "fund", "inventory_send", "inventory_owner")
    assert h.fund is not None and h.inventory_send is not None and h.inventory_owner
    bob = _Key()
    await h.fund(h.inventory_owner, 6_000)
    done = await h.inventory_send([TxOutputSpec(bob.pub, 2_500)])
    assert [(v.amount, v.owner) for v in await h.backend.list_vtxos(bob.pub)] == [(2_500, bob.pub)]
    assert {(v.owner, v.amount) for v in done.created} >= {(bob.pub, 2_500)}


async def check_sub_dust_outputs(h: ArkHarness) -> None:
    """Outputs below dust take arkd's OP_RETURN form (PINS.md §1.3); as in arkd, the VTXOs
    they create are swept at once: listed for their owner, never spendable offchain."""
    _need(h, "fund")
    assert h.fund is not None
    alice, bob, gateway = _Key(), _Key(), _Key()
    funded = await h.fund(alice.pub, 1_000)
    with pytest.raises(ArkRelayError) as zero:
        await h.backend.build_offchain_tx(
            [funded], [TxOutputSpec(bob.pub, 0), TxOutputSpec(alice.pub, 1_000)]
        )
    _expect(zero.value, ErrorCode.MALFORMED_CONTENT)
    info = await h.backend.get_info()
    fee = 10
    pay = [TxOutputSpec(bob.pub, 890), TxOutputSpec(gateway.pub, fee), TxOutputSpec(alice.pub, 100)]
    if info.vtxo_min_amount > fee:
        with pytest.raises(ArkRelayError) as refused:
            await h.backend.build_offchain_tx([funded], pay)
        _expect(refused.value, ErrorCode.MALFORMED_CONTENT)
        pytest.skip(f"this server's vtxo_min_amount ({info.vtxo_min_amount}) forbids {fee} sats")
    assert fee < info.dust
    done = await _transfer(h.backend, alice, [funded], pay)
    assert sorted((v.owner, v.amount, v.status) for v in done.created) == sorted(
        [(bob.pub, 890, "spendable"), (gateway.pub, fee, "swept"), (alice.pub, 100, "swept")]
    )
    [fee_vtxo] = [v for v in done.created if v.owner == gateway.pub]
    listed = await h.backend.list_vtxos(gateway.pub, spendable_only=False)
    assert [(v.vtxo_id, v.amount, v.script, v.status) for v in listed] == [
        (fee_vtxo.vtxo_id, fee, fee_vtxo.script, "swept")
    ]
    assert await h.backend.list_vtxos(gateway.pub) == []

    # arkd refuses a sub-dust VTXO as an offchain input, even beside a bigger one.
    bigger = await h.fund(gateway.pub, 1_000)
    with pytest.raises(ArkRelayError) as spent:
        await _sign_and_submit(h.backend, gateway, [bigger, fee_vtxo], bob.pub)
    _expect(spent.value, ErrorCode.VTXO_EXPIRED)
    assert [v.vtxo_id for v in await h.backend.list_vtxos(gateway.pub)] == [bigger.vtxo_id]


async def check_pending_tx_recovery(h: ArkHarness) -> None:
    """A submitted, unfinalized tx is found again with the owner's ownership proof and
    finalized; a proof signed by another key is refused before it leaves the backend."""
    _need(h, "fund")
    assert h.fund is not None
    alice, bob, mallory = _Key(), _Key(), _Key()
    vtxo = await h.fund(alice.pub, 6_000)
    built = await h.backend.build_offchain_tx([vtxo], [TxOutputSpec(bob.pub, 6_000)])
    signed = h.backend.add_signatures(
        built.ark_tx,
        [InputSignature(s.input_index, alice.pub, alice.sign(s.sighash)) for s in built.to_sign],
    )
    submitted = await h.backend.submit_tx(signed, built.checkpoint_txs)

    proof = await h.backend.build_ownership_proof([vtxo], expire_at=0)
    assert proof.vtxo_ids == (vtxo.vtxo_id,)
    assert {t.owner for t in proof.to_sign} == {alice.pub}
    with pytest.raises(ArkRelayError) as forged:
        h.backend.add_proof_signatures(
            proof,
            [
                InputSignature(t.input_index, mallory.pub, mallory.sign(t.sighash))
                for t in proof.to_sign
            ],
        )
    _expect(forged.value, ErrorCode.VTXO_NOT_OWNED)
    signed_proof = h.backend.add_proof_signatures(
        proof,
        [InputSignature(t.input_index, alice.pub, alice.sign(t.sighash)) for t in proof.to_sign],
    )

    [pending] = await h.backend.get_pending_txs(signed_proof, proof.message)
    assert (pending.ark_txid, pending.final_ark_tx) == (submitted.ark_txid, submitted.final_ark_tx)
    assert [t.vtxo_id for t in pending.to_sign] == [vtxo.vtxo_id]
    finals = [
        h.backend.add_signatures(
            t.psbt, [InputSignature(t.input_index, alice.pub, alice.sign(t.sighash))]
        )
        for t in pending.to_sign
    ]
    done = await h.backend.finalize_tx(pending.ark_txid, finals)
    assert done.spent == (vtxo.vtxo_id,)
    assert [v.amount for v in await h.backend.list_vtxos(bob.pub)] == [6_000]
    assert await h.backend.get_pending_txs(signed_proof, proof.message) == []


ARK_CHECKS: dict[str, Callable[[ArkHarness], Awaitable[None]]] = {
    "info": check_info,
    "list_vtxos": check_list_vtxos,
    "transfer": check_transfer,
    "resubmit_is_idempotent": check_resubmit_is_idempotent,
    "double_spend_rejected": check_double_spend_rejected,
    "wrong_signature_rejected": check_wrong_signature_rejected,
    "not_owner_rejected": check_not_owner_rejected,
    "expired_rejected": check_expired_rejected,
    "inventory_send": check_inventory_send,
    "sub_dust_outputs": check_sub_dust_outputs,
    "pending_tx_recovery": check_pending_tx_recovery,
}


async def run_check(maker: Maker, name: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with maker() as harness:
            await ARK_CHECKS[name](harness)


async def check_ark_backend(maker: Maker) -> None:
    """Run every check, each on a fresh harness (skipped checks are skipped, not failed)."""
    for name in ARK_CHECKS:
        try:
            await run_check(maker, name)
        except pytest.skip.Exception:
            continue
