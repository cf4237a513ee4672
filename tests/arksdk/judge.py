"""@arkade-os/sdk as the judge of the gateway's ark transactions.

Every ark tx and checkpoint the arkd simulator accepted (its journal, see
``arkrelay_arkd.sim.journal``) is built again by the SDK's ``buildOffchainTx`` under node
(rebuild.mjs) from the same inputs, and compared with what the gateway submitted: txids,
the unsigned tx bytes, every PSBT input and output map (signatures aside), and the BIP341
sighash of every input, which is what the gateway asks a wallet to sign. Each input must
also be the SDK's own default VTXO script for its owner, the server key and the exit delay.

The simulator itself checks a submission by rebuilding it with the plugin's ``arktx``, the
module the gateway builds with; the SDK shares none of that code, so a mistake the two
share is caught here.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from arkrelay_arkd import arktx
from arkrelay_arkd.client import SIM_STATE_FILE
from arkrelay_arkd.sim.journal import JournalEntry, read_journal
from embit.psbt import PSBT

from tests.support import REQUIRE_NODE_ENV, need_node

__all__ = [
    "SDK_DIR",
    "JudgeFailed",
    "differences",
    "journal_entries",
    "judge",
    "judge_state_files",
    "need_sdk",
    "rebuild_with_sdk",
    "sdk_missing",
]

SDK_DIR = Path(__file__).resolve().parent
REBUILD = SDK_DIR / "rebuild.mjs"
#: One node process for any number of txs; starting it and loading the SDK takes ~1 s.
NODE_TIMEOUT = 120


class JudgeFailed(AssertionError):
    """The SDK built something else than the gateway submitted, or refused to build it."""


_PACKAGES = ("@arkade-os/sdk", "@scure/btc-signer", "@scure/base")


def need_sdk() -> None:
    """Skip the calling test without node and the SDK (fail it under ARKRELAY_REQUIRE_NODE=1)."""
    need_node(SDK_DIR, _PACKAGES)


def sdk_missing() -> str | None:
    """Why the SDK cannot run here, or None. Under ARKRELAY_REQUIRE_NODE=1 a missing SDK
    fails the calling test instead."""
    reason = None
    if shutil.which("node") is None:
        reason = "node is not on PATH"
    elif not all((SDK_DIR / "node_modules" / p / "package.json").is_file() for p in _PACKAGES):
        reason = "@arkade-os/sdk is not installed: run `npm ci --prefix tests/arksdk`"
    if reason is not None and os.environ.get(REQUIRE_NODE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_NODE_ENV}=1 requires the SDK judge)")
    return reason


def rebuild_with_sdk(entries: Sequence[JournalEntry]) -> list[dict[str, Any]]:
    """What the SDK builds for each entry (rebuild.mjs's ``results``, in the same order)."""
    request = msgspec.json.encode({"txs": list(entries)})
    done = subprocess.run(
        ["node", str(REBUILD)],
        input=request,
        capture_output=True,
        timeout=NODE_TIMEOUT,
        cwd=SDK_DIR,
    )
    if done.returncode != 0:
        raise JudgeFailed(f"rebuild.mjs exited {done.returncode}: {done.stderr.decode()[-3000:]}")
    results = json.loads(done.stdout)["results"]
    if [r["ark_txid"] for r in results] != [e.ark_txid for e in entries]:
        raise JudgeFailed("rebuild.mjs answered for other txs than it was given")
    return results


def differences(entry: JournalEntry, result: dict[str, Any]) -> list[str]:
    """Every way the gateway's submission differs from the SDK's rebuild (empty if none)."""
    if result["error"] is not None:
        return [f"the SDK refused to build it: {result['error']}"]
    sdk = result["sdk"]
    diffs: list[str] = []
    gateway_ark = arktx.decode_psbt(entry.ark_tx)
    if arktx.txid(gateway_ark) != entry.ark_txid:
        diffs.append(
            f"submitted ark tx is {arktx.txid(gateway_ark)}, journal says {entry.ark_txid}"
        )
    diffs += _compare_tx("ark tx", gateway_ark, sdk["ark_tx"])

    by_outpoint = {}
    for b64 in entry.checkpoint_txs:
        packet = arktx.decode_psbt(b64)
        by_outpoint[arktx.input_outpoint(packet, 0)] = packet
    if len(sdk["checkpoints"]) != len(entry.inputs) or len(by_outpoint) != len(entry.inputs):
        diffs.append(
            f"{len(entry.checkpoint_txs)} checkpoints submitted, the SDK built "
            f"{len(sdk['checkpoints'])} for {len(entry.inputs)} inputs"
        )
    for i, (inp, built) in enumerate(zip(entry.inputs, sdk["checkpoints"], strict=False)):
        outpoint = f"{inp.txid}:{inp.vout}"
        packet = by_outpoint.get(outpoint)
        if packet is None:
            diffs.append(f"no checkpoint submitted spends input {i} ({outpoint})")
            continue
        diffs += _compare_tx(f"checkpoint {i} ({outpoint})", packet, built)
        spent_script = packet.inputs[0].witness_utxo.script_pubkey.data.hex()
        default = sdk["default_vtxo_scripts"][i]
        if default != spent_script:
            diffs.append(
                f"input {i} ({outpoint}) is locked to {spent_script}; the SDK's default VTXO "
                f"script for its owner, server key and exit delay is {default}"
            )
    return diffs


def _compare_tx(what: str, gateway: PSBT, built: dict[str, Any]) -> list[str]:
    sdk = PSBT.from_string(built["psbt"])
    diffs: list[str] = []
    if arktx.txid(gateway) != built["txid"]:
        diffs.append(f"{what}: txid {arktx.txid(gateway)}, SDK {built['txid']}")
    if arktx.txid(sdk) != built["txid"]:
        diffs.append(
            f"{what}: the SDK's PSBT has txid {arktx.txid(sdk)}, its tx.id {built['txid']}"
        )
    ours, theirs = gateway.tx.serialize().hex(), sdk.tx.serialize().hex()
    if ours != theirs:
        diffs.append(f"{what}: unsigned tx\n  gateway {ours}\n  SDK     {theirs}")
    if len(gateway.inputs) != len(sdk.inputs) or len(gateway.outputs) != len(sdk.outputs):
        return diffs
    stripped = _without_signatures(gateway)
    for i, (ours_in, theirs_in) in enumerate(zip(stripped.inputs, sdk.inputs, strict=True)):
        for field, mine, other in _input_fields(ours_in, theirs_in):
            if mine != other:
                diffs.append(f"{what} input {i} {field}:\n  gateway {mine}\n  SDK     {other}")
        if ours_in.serialize() != theirs_in.serialize():
            diffs.append(
                f"{what} input {i} PSBT map:\n  gateway {ours_in.serialize().hex()}\n"
                f"  SDK     {theirs_in.serialize().hex()}"
            )
        sighash = arktx.tapscript_sighash(gateway, i).hex()
        if sighash != built["sighashes"][i]:
            diffs.append(
                f"{what} input {i} sighash: gateway {sighash}, SDK {built['sighashes'][i]}"
            )
    for i, (ours_out, theirs_out) in enumerate(zip(gateway.outputs, sdk.outputs, strict=True)):
        if ours_out.serialize() != theirs_out.serialize():
            diffs.append(
                f"{what} output {i} PSBT map:\n  gateway {ours_out.serialize().hex()}\n"
                f"  SDK     {theirs_out.serialize().hex()}"
            )
    if gateway.unknown != sdk.unknown:
        diffs.append(f"{what}: global unknown fields {gateway.unknown} vs SDK {sdk.unknown}")
    return diffs


def _without_signatures(psbt: PSBT) -> PSBT:
    """A copy without what signing adds, which the builder never writes."""
    bare = copy.deepcopy(psbt)
    for inp in bare.inputs:
        inp.taproot_sigs = OrderedDict()
        inp.partial_sigs = OrderedDict()
        inp.final_scriptwitness = None
        inp.final_scriptsig = None
    return bare


def _input_fields(ours: Any, theirs: Any) -> list[tuple[str, Any, Any]]:
    def utxo(inp: Any) -> Any:
        u = inp.witness_utxo
        return None if u is None else (u.value, u.script_pubkey.data.hex())

    def leaves(inp: Any) -> Any:
        return sorted((bytes(c).hex(), bytes(s).hex()) for c, s in inp.taproot_scripts.items())

    def unknown(inp: Any) -> Any:
        return sorted((k.hex(), v.hex()) for k, v in inp.unknown.items())

    return [
        ("witness utxo (amount, script)", utxo(ours), utxo(theirs)),
        ("tap leaf scripts (control block, script+version)", leaves(ours), leaves(theirs)),
        ("unknown fields (Ark PSBT fields)", unknown(ours), unknown(theirs)),
    ]


def judge(entries: Sequence[JournalEntry]) -> int:
    """Judge every entry; JudgeFailed listing every difference, else how many were judged."""
    if not entries:
        return 0
    report: list[str] = []
    for entry, result in zip(entries, rebuild_with_sdk(entries), strict=True):
        diffs = differences(entry, result)
        if diffs:
            report.append(f"ark tx {entry.ark_txid}:\n" + "\n".join(f"- {d}" for d in diffs))
    if report:
        raise JudgeFailed(
            f"{len(report)} of {len(entries)} ark txs differ from @arkade-os/sdk's rebuild:\n"
            + "\n".join(report)
        )
    return len(entries)


def journal_entries(root: Path) -> list[JournalEntry]:
    """The journals of every arkd simulator state file under ``root``, in path order."""
    return [e for f in sorted(root.rglob(SIM_STATE_FILE)) for e in read_journal(f)]


def judge_state_files(root: Path) -> int:
    """Judge the journals of every arkd simulator state file under ``root``, in one node run."""
    return judge(journal_entries(root))
