"""The simulator's intent-proof rules against arkd's own fixtures.

Copied unchanged from arkade-os/arkd at tag v0.9.15 (f444de6c336c024f5b03e646feb781eec9a24c00):

  pkg/ark-lib/intent/testdata/verify_fixtures.json
    -> data/arkd-v0.9.15/intent_verify_fixtures.json
  pkg/ark-lib/intent/testdata/proof_fixtures.json
    -> data/arkd-v0.9.15/intent_proof_fixtures.json
  pkg/ark-lib/intent/testdata/message_fixtures.json
    -> data/arkd-v0.9.15/intent_message_fixtures.json

arkd's proof_test.go runs ``intent.Verify`` and ``intent.New`` over them, message_test.go
encodes every message; these tests run the simulator's verifier, the plugin's builder and
its message encoder (intentmessage.py) the same way, every valid and invalid case, then
break one rule at a time to show the fixtures notice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from embit.script import Script
from embit.transaction import TransactionOutput

from arkrelay_arkd import arktx, intentmessage, intentproof, tapscript
from arkrelay_arkd.sim import intentcheck
from arkrelay_arkd.tapscript import TapTree, default_vtxo_tree
from arkrelay_core.bitcoin import SIGHASH_DEFAULT
from arkrelay_core.nostr import bip340

DATA = Path(__file__).parent / "data" / "arkd-v0.9.15"


def _load(name: str) -> Any:
    return json.loads((DATA / f"intent_{name}_fixtures.json").read_text())


VERIFY = _load("verify")
PROOF = _load("proof")
MESSAGE = _load("message")


def _run(fixture: dict[str, Any]) -> str | None:
    """None if the verifier accepts the fixture, else its reason."""
    skip = [bytes.fromhex(k) for k in fixture.get("skip_keys") or []]
    try:
        intentcheck.verify(fixture["proof"], fixture.get("message", ""), skip)
    except intentcheck.ProofRefused as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("fixture", VERIFY["valid"], ids=lambda f: f["name"])
def test_valid_proofs_verify(fixture: dict[str, Any]) -> None:
    assert _run(fixture) is None


@pytest.mark.parametrize("fixture", VERIFY["invalid"], ids=lambda f: f["name"])
def test_invalid_proofs_fail_with_arkds_reason(fixture: dict[str, Any]) -> None:
    reason = _run(fixture)
    assert reason is not None and fixture["expected_error"] in reason


def _fixture_outcomes() -> list[bool]:
    """For every fixture, whether the verifier agrees with arkd about it."""
    agree = [_run(f) is None for f in VERIFY["valid"]]
    for f in VERIFY["invalid"]:
        reason = _run(f)
        agree.append(reason is not None and f["expected_error"] in reason)
    return agree


def _always_valid(*_: Any) -> bool:
    return True


_orig_to_spend = intentcheck.to_spend_tx
_orig_hash_ops = dict(intentcheck._HASH_OPS)

MUTATIONS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    # signatures are checked at all
    "no signature check": lambda m: m.setattr(intentcheck.bip340, "schnorr_verify", _always_valid),
    # toSpend commits to this message (and to its tag)
    "toSpend over another message": lambda m: m.setattr(
        intentcheck, "to_spend_tx", lambda msg, script: _orig_to_spend(msg + " ", script)
    ),
    # the sighash type comes from the signature's 65th byte
    "SIGHASH_DEFAULT only": lambda m: m.setattr(intentcheck, "_declared_hash_type", lambda _: 0),
    # the control block commits to the prevout's key with the NUMS internal key
    "another internal key": lambda m: m.setattr(intentcheck, "NUMS_XONLY", b"\x02" * 32),
    # the keys in ``skip`` (arkd's signer) need not sign
    "skip list ignored": lambda m: m.setattr(
        intentcheck,
        "_verify_tapscript_sigs",
        _wrap_skip(intentcheck._verify_tapscript_sigs),
    ),
    # condition closures' conditions are evaluated
    "hash160 read as sha256": lambda m: m.setattr(
        intentcheck, "_HASH_OPS", {**_orig_hash_ops, 0xA9: _orig_hash_ops[0xA8]}
    ),
    # note inputs are recognized and their preimage checked
    "notes not recognized": lambda m: m.setattr(intentcheck, "_is_note", lambda script: False),
    # a proof needs an output
    "outputs not counted": lambda m: m.setattr(
        intentcheck, "parse", _with_output(intentcheck.parse)
    ),
}


def _wrap_skip(fn: Callable[..., None]) -> Callable[..., None]:
    def without_skip(psbt: Any, spent: Any, skip: set[bytes]) -> None:
        fn(psbt, spent, set())

    return without_skip


def _with_output(fn: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(b64: str) -> Any:
        psbt = fn(b64)
        if not psbt.outputs:
            psbt.outputs.append(intentproof.ProofPSBT().PSBTOUT_CLS(vout=_op_return()))
        return psbt

    return parse


def _op_return() -> Any:
    return TransactionOutput(0, Script(b"\x6a"))


def test_the_fixtures_agree_with_the_verifier_as_written() -> None:
    assert all(_fixture_outcomes())


@pytest.mark.parametrize("mutation", MUTATIONS, ids=str)
def test_breaking_a_rule_makes_a_fixture_disagree(
    mutation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    MUTATIONS[mutation](monkeypatch)
    assert not all(_fixture_outcomes()), f"no fixture notices: {mutation}"


@pytest.mark.parametrize("fixture", PROOF["valid"], ids=lambda f: f["name"])
def test_builder_writes_arkds_proof_psbt_byte_for_byte(fixture: dict[str, Any]) -> None:
    # The fixtures' txids are raw hash bytes (the test copies them into a chainhash.Hash).
    inputs = [
        (
            bytes.fromhex(i["txid"])[::-1].hex(),
            i["vout"],
            i.get("sequence", 0),
            bytes.fromhex(i["witness_utxo"]["script"]),
            i["witness_utxo"]["amount"],
        )
        for i in fixture["inputs"]
    ]
    outputs = [(bytes.fromhex(o["script"]), o["amount"]) for o in fixture["outputs"]]
    psbt = intentproof.new_proof(fixture["message"], inputs, outputs)
    assert psbt.to_string() == fixture["expected"]
    assert psbt.unknown[intentproof.GLOBAL_MESSAGE_KEY] == fixture["message"].encode()


@pytest.mark.parametrize("fixture", PROOF["invalid"], ids=lambda f: f["name"])
def test_builder_refuses_what_arkds_new_refuses(fixture: dict[str, Any]) -> None:
    inputs = [
        (
            bytes.fromhex(i["txid"])[::-1].hex() if i.get("txid") else "",
            i.get("vout", 0),
            i.get("sequence", 0),
            bytes.fromhex(i["witness_utxo"]["script"]) if "witness_utxo" in i else None,
            i["witness_utxo"]["amount"] if "witness_utxo" in i else 0,
        )
        for i in fixture["inputs"]
    ]
    outputs = [(bytes.fromhex(o["script"]), o["amount"]) for o in fixture.get("outputs") or []]
    with pytest.raises(arktx.ArkTxError, match=fixture["expected_error"]):
        intentproof.new_proof(fixture.get("message", ""), inputs, outputs)


@pytest.mark.parametrize("fixture", MESSAGE, ids=lambda f: f["name"])
def test_every_message_is_encoded_as_arkd_encodes_it(fixture: dict[str, Any]) -> None:
    message = intentmessage.decode(json.dumps(fixture["message"]))
    assert message.type == fixture["message"]["type"]
    assert intentmessage.encode(message) == fixture["expected"]


def test_get_pending_tx_message_is_encoded_as_arkd_reencodes_it() -> None:
    (fixture,) = [f for f in MESSAGE if f["message"].get("type") == "get-pending-tx"]
    raw = json.dumps(fixture["message"], indent=2)
    expire_at = intentcheck.decode_get_pending_tx(raw)
    assert intentcheck.encode_get_pending_tx(expire_at) == fixture["expected"]
    assert intentproof.get_pending_tx_message(expire_at) == fixture["expected"]


@pytest.mark.parametrize(
    "message",
    [
        '{"type":"delete","expire_at":1}',
        '{"expire_at":1}',
        '{"type":"get-pending-tx","expire_at":1.5}',
        '{"type":"get-pending-tx","expire_at":"1"}',
        "[]",
        "not json",
    ],
)
def test_other_messages_are_refused(message: str) -> None:
    with pytest.raises(intentcheck.ProofRefused, match="invalid get-pending-tx intent message"):
        intentcheck.decode_get_pending_tx(message)


def test_message_keys_are_read_as_go_reads_them() -> None:
    # encoding/json: case-insensitive keys, unknown ones ignored, null leaves zero.
    assert intentcheck.decode_get_pending_tx('{"TYPE":"get-pending-tx","Expire_At":7,"x":1}') == 7
    assert intentcheck.decode_get_pending_tx('{"type":"get-pending-tx","expire_at":null}') == 0


# --------------------------------------------------------------- rules the fixtures miss


OWNER = bip340.generate_secret_key()
SIGNER = bip340.generate_secret_key()
OWNER_X, SIGNER_X = bip340.xonly_public_key(OWNER), bip340.xonly_public_key(SIGNER)


def _proof(leaf: bytes | None = None, tree: TapTree | None = None) -> tuple[Any, str]:
    tree = tree or default_vtxo_tree(OWNER_X, SIGNER_X, 512)
    leaf = leaf or tree.leaves[1]
    message = intentproof.get_pending_tx_message(0)
    proven = intentproof.ProofInput("ab" * 32, 1, 1_000, tree, leaf)
    return intentproof.build_proof(message, [proven]), message


def _verify(psbt: Any, message: str, skip: tuple[bytes, ...] = (SIGNER_X,)) -> None:
    intentcheck.verify(arktx.encode_psbt(psbt), message, skip)


def test_every_closure_key_outside_skip_must_sign() -> None:
    psbt, message = _proof()
    intentproof.sign_proof(psbt, message, OWNER)
    _verify(psbt, message)
    with pytest.raises(intentcheck.ProofRefused, match=f"missing signature for {SIGNER_X.hex()}"):
        _verify(psbt, message, skip=())


def test_a_signature_from_a_key_outside_the_closure_is_tolerated() -> None:
    psbt, message = _proof()
    intentproof.sign_proof(psbt, message, OWNER)
    intentproof.sign_proof(psbt, message, bip340.generate_secret_key())
    _verify(psbt, message)


def test_a_64_byte_signature_is_sighash_default() -> None:
    psbt, message = _proof()
    spent = intentproof.prevouts(
        psbt, intentproof.to_spend_tx(message, psbt.inputs[1].witness_utxo.script_pubkey.data)
    )
    for i, inp in enumerate(psbt.inputs):
        script = next(iter(inp.taproot_scripts.values()))[:-1]
        digest = intentproof.tapscript_sighash(psbt, i, spent, script, SIGHASH_DEFAULT)
        intentproof.add_proof_signature(psbt, i, OWNER_X, bip340.schnorr_sign(OWNER, digest))
        (key,) = inp.taproot_sigs
        inp.taproot_sigs[key] = inp.taproot_sigs[key][:64]
    _verify(psbt, message)


def test_an_invalid_sighash_type_is_refused() -> None:
    psbt, message = _proof()
    intentproof.sign_proof(psbt, message, OWNER)
    (key,) = psbt.inputs[1].taproot_sigs
    psbt.inputs[1].taproot_sigs[key] = psbt.inputs[1].taproot_sigs[key][:64] + b"\x04"
    with pytest.raises(intentcheck.ProofRefused, match="invalid taproot sighash type"):
        _verify(psbt, message)


def test_a_signature_on_another_leaf_is_refused() -> None:
    psbt, message = _proof()
    intentproof.sign_proof(psbt, message, OWNER)
    sigs = psbt.inputs[1].taproot_sigs
    (((pub, _), sig),) = sigs.items()
    sigs.clear()
    sigs[(pub, b"\x00" * 32)] = sig
    with pytest.raises(intentcheck.ProofRefused, match="invalid leaf hash for tapscript sig 0"):
        _verify(psbt, message)


def test_the_control_block_must_open_the_prevout_key_with_the_right_parity() -> None:
    psbt, message = _proof()
    intentproof.sign_proof(psbt, message, OWNER)
    scripts = psbt.inputs[1].taproot_scripts
    ((control, value),) = scripts.items()
    scripts.clear()
    scripts[bytes([control[0] ^ 1]) + control[1:]] = value
    with pytest.raises(intentcheck.ProofRefused, match="invalid control block parity for input 1"):
        _verify(psbt, message)
    scripts.clear()
    scripts[control[:-32] + b"\x11" * 32] = value
    with pytest.raises(intentcheck.ProofRefused, match="invalid control block for input 1"):
        _verify(psbt, message)


def test_checksigadd_and_cltv_closures_are_understood() -> None:
    adding = OWNER_X.join([b"\x20", b"\xac\x20"]) + SIGNER_X + b"\xba\x52\x9c"
    cltv = b"\x03\x40\x42\x0f\xb1\x75\x20" + OWNER_X + b"\xac"
    for leaf in (adding, cltv):
        tree = TapTree.from_leaves([leaf, tapscript.collaborative_closure(OWNER_X, SIGNER_X)])
        psbt, message = _proof(leaf, tree)
        with pytest.raises(
            intentcheck.ProofRefused, match=f"missing signature for {OWNER_X.hex()}"
        ):
            _unsigned_owner(psbt, message)
        intentproof.sign_proof(psbt, message, OWNER)
        _verify(psbt, message)


def _unsigned_owner(psbt: Any, message: str) -> None:
    intentproof.sign_proof(psbt, message, SIGNER)  # the signer alone: the owner is missing
    try:
        _verify(psbt, message, skip=())
    finally:
        for inp in psbt.inputs:
            inp.taproot_sigs.clear()


def test_an_unknown_leaf_script_is_refused() -> None:
    tree = TapTree.from_leaves([b"\x51", tapscript.collaborative_closure(OWNER_X, SIGNER_X)])
    psbt, message = _proof(b"\x51", tree)
    with pytest.raises(intentcheck.ProofRefused, match="does not match any known closure type"):
        _verify(psbt, message)
