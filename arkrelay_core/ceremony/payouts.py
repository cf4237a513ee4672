"""Paying from the gateway's own VTXOs (lifts, refunds), signing both rounds with the
service key, and telling after a restart whether a recorded payment went out."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..errors import ArkRelayError
from ..interfaces import InputSignature, InputToSign
from .ark import ArkSteps
from .ledger import record_colours
from .ports import HasPorts, Ports, ports_of
from .spend import Leg, Output

__all__ = ["Record", "send_from_gateway", "send_status"]


#: ``record(plan)`` stores a send's plan (txid, inputs, outputs) before SubmitTx, so that
#: a restart can tell a finished send from one never made (see :func:`send_status`).
Record = Callable[[dict[str, Any]], Awaitable[None]]


async def send_from_gateway(
    source: Ports | HasPorts, outputs: list[Output], record: Record
) -> tuple[str, list[Output]]:
    """Pay ``outputs`` from the gateway's own VTXOs, signing with the service key.

    Returns the ark txid and the outputs as created (change to the gateway last).
    """
    ports = ports_of(source)
    ark = ArkSteps(ports)
    backend = ports.ark_backend
    gateway = ports.identity.pubkey
    leg = Leg(gateway, tuple(outputs))
    try:
        inputs, all_outputs = await ark.plan(leg)
    except ArkRelayError as exc:
        raise ArkRelayError(
            f"the gateway's inventory cannot pay this: {exc}", code=exc.code
        ) from exc
    spend = await ark.build(inputs, all_outputs)
    await record(
        {
            "ark_txid": spend["ark_txid"],
            "inputs": [c.vtxo_id for c in inputs],
            "outputs": spend["outputs"],
        }
    )
    sign = ports.identity.sign_hash
    items = [msgspec.convert(s, InputToSign) for s in spend["to_sign"]]
    signed = backend.add_signatures(
        spend["ark_tx"],
        [InputSignature(s.input_index, gateway, sign(s.sighash)) for s in items],
    )
    submitted = await backend.submit_tx(signed, spend["checkpoint_txs"])
    finals = [
        backend.add_signatures(s.psbt, [InputSignature(s.input_index, gateway, sign(s.sighash))])
        for s in submitted.to_sign
    ]
    await backend.finalize_tx(submitted.ark_txid, finals)
    await ports.run(
        lambda db: record_colours(db, inputs, all_outputs, submitted.ark_txid, time.time())
    )
    return submitted.ark_txid, all_outputs


async def send_status(source: Ports | HasPorts, plan: dict[str, Any] | None) -> str:
    """What became of a recorded send: ``done`` (final), ``not_sent`` (its inputs are
    untouched, so sending again pays once), or ``stuck`` (submitted, never finalized)."""
    if plan is None:
        return "not_sent"
    backend = ports_of(source).ark_backend
    if await backend.get_vtxos([f"{plan['ark_txid']}:0"]):
        return "done"
    inputs = await backend.get_vtxos(plan["inputs"])
    if len(inputs) == len(plan["inputs"]) and all(v.status == "spendable" for v in inputs):
        return "not_sent"
    return "stuck"
