"""arkrelay_arkd.musig2 against the official BIP-327 test vectors (data/bip327, source and
commit in its README), and a whole three-signer session with a taproot tweak whose signature
libsecp256k1's BIP-340 verifier accepts."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arkrelay_arkd import musig2
from arkrelay_arkd.musig2 import MusigError

DATA = Path(__file__).parent / "data" / "bip327"


def vectors(name: str) -> dict:
    return json.loads((DATA / f"{name}_vectors.json").read_text())


def h(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def pick(table: list[str], indices: list[int]) -> list[bytes]:
    return [bytes.fromhex(table[i]) for i in indices]


def expect_error(error: dict):
    """The pytest.raises matching one of the vectors' error descriptions."""
    if error["type"] == "invalid_contribution":
        return pytest.raises(MusigError)
    assert error["type"] == "value"
    return pytest.raises(ValueError, match=error["message"].replace(".", r"\."))


def check_contribution(excinfo, error: dict) -> None:
    if error["type"] == "invalid_contribution":
        assert excinfo.value.signer == error["signer"]
        assert excinfo.value.contrib == error["contrib"]
    else:
        assert not isinstance(excinfo.value, MusigError)


# --- key_sort, key_agg --------------------------------------------------------------------


def test_key_sort():
    v = vectors("key_sort")
    assert musig2.key_sort(pick(v["pubkeys"], range(len(v["pubkeys"])))) == pick(
        v["sorted_pubkeys"], range(len(v["sorted_pubkeys"]))
    )


KEY_AGG = vectors("key_agg")


@pytest.mark.parametrize("case", KEY_AGG["valid_test_cases"])
def test_key_agg(case):
    ctx = musig2.key_agg(pick(KEY_AGG["pubkeys"], case["key_indices"]))
    assert ctx.xonly() == bytes.fromhex(case["expected"])
    assert len(ctx.plain()) == 33 and ctx.plain()[1:] == ctx.xonly()


@pytest.mark.parametrize("case", KEY_AGG["error_test_cases"], ids=lambda c: c["comment"])
def test_key_agg_errors(case):
    with expect_error(case["error"]) as excinfo:
        ctx = musig2.key_agg(pick(KEY_AGG["pubkeys"], case["key_indices"]))
        for t, xonly in zip(case["tweak_indices"], case["is_xonly"], strict=True):
            ctx = ctx.apply_tweak(bytes.fromhex(KEY_AGG["tweaks"][t]), xonly)
    check_contribution(excinfo, case["error"])


def test_key_agg_context_is_immutable():
    ctx = musig2.key_agg(pick(KEY_AGG["pubkeys"], [0, 1]))
    tweaked = ctx.apply_tweak(bytes(31) + b"\x01", True)
    assert tweaked.xonly() != ctx.xonly()
    assert ctx == musig2.key_agg(pick(KEY_AGG["pubkeys"], [0, 1]))


# --- nonces -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", vectors("nonce_gen")["test_cases"])
def test_nonce_gen(case):
    secnonce, pubnonce = musig2.nonce_gen(
        h(case["sk"]), h(case["pk"]), h(case["aggpk"]), h(case["msg"]), h(case["extra_in"]),
        h(case["rand_"]),
    )  # fmt: skip
    assert secnonce == bytes.fromhex(case["expected_secnonce"])
    assert pubnonce == bytes.fromhex(case["expected_pubnonce"])


def test_nonce_gen_draws_fresh_randomness():
    pk = bytes.fromhex(KEY_AGG["pubkeys"][0])
    first, second = (
        musig2.nonce_gen(None, pk, None, None, None),
        musig2.nonce_gen(None, pk, None, None, None),
    )
    assert first[1] != second[1]
    assert len(first[0]) == 97 and len(first[1]) == 66


NONCE_AGG = vectors("nonce_agg")


@pytest.mark.parametrize("case", NONCE_AGG["valid_test_cases"])
def test_nonce_agg(case):
    aggnonce = musig2.nonce_agg(pick(NONCE_AGG["pnonces"], case["pnonce_indices"]))
    assert aggnonce == bytes.fromhex(case["expected"])


@pytest.mark.parametrize("case", NONCE_AGG["error_test_cases"], ids=lambda c: c["comment"])
def test_nonce_agg_errors(case):
    with expect_error(case["error"]) as excinfo:
        musig2.nonce_agg(pick(NONCE_AGG["pnonces"], case["pnonce_indices"]))
    check_contribution(excinfo, case["error"])


# --- sign and verify ----------------------------------------------------------------------

SV = vectors("sign_verify")
SV_SK = bytes.fromhex(SV["sk"])


def sv_secnonce(index: int = 0) -> bytearray:
    return bytearray(bytes.fromhex(SV["secnonces"][index]))


@pytest.mark.parametrize("case", SV["valid_test_cases"], ids=lambda c: c.get("comment", ""))
def test_sign_and_verify(case):
    pubkeys = pick(SV["pubkeys"], case["key_indices"])
    pubnonces = pick(SV["pnonces"], case["nonce_indices"])
    aggnonce = bytes.fromhex(SV["aggnonces"][case["aggnonce_index"]])
    assert musig2.nonce_agg(pubnonces) == aggnonce
    msg = bytes.fromhex(SV["msgs"][case["msg_index"]])
    session = musig2.SessionContext(aggnonce, pubkeys, [], [], msg)
    psig = musig2.sign(sv_secnonce(), SV_SK, session)
    assert psig == bytes.fromhex(case["expected"])
    assert musig2.partial_sig_verify(psig, pubnonces, pubkeys, [], [], msg, case["signer_index"])


@pytest.mark.parametrize("case", SV["sign_error_test_cases"], ids=lambda c: c["comment"])
def test_sign_errors(case):
    session = musig2.SessionContext(
        bytes.fromhex(SV["aggnonces"][case["aggnonce_index"]]),
        pick(SV["pubkeys"], case["key_indices"]),
        [],
        [],
        bytes.fromhex(SV["msgs"][case["msg_index"]]),
    )
    with expect_error(case["error"]) as excinfo:
        musig2.sign(sv_secnonce(case["secnonce_index"]), SV_SK, session)
    check_contribution(excinfo, case["error"])


@pytest.mark.parametrize("case", SV["verify_fail_test_cases"], ids=lambda c: c["comment"])
def test_verify_fails(case):
    assert not musig2.partial_sig_verify(
        bytes.fromhex(case["sig"]),
        pick(SV["pnonces"], case["nonce_indices"]),
        pick(SV["pubkeys"], case["key_indices"]),
        [],
        [],
        bytes.fromhex(SV["msgs"][case["msg_index"]]),
        case["signer_index"],
    )


@pytest.mark.parametrize("case", SV["verify_error_test_cases"], ids=lambda c: c["comment"])
def test_verify_errors(case):
    with expect_error(case["error"]) as excinfo:
        musig2.partial_sig_verify(
            bytes.fromhex(case["sig"]),
            pick(SV["pnonces"], case["nonce_indices"]),
            pick(SV["pubkeys"], case["key_indices"]),
            [],
            [],
            bytes.fromhex(SV["msgs"][case["msg_index"]]),
            case["signer_index"],
        )
    check_contribution(excinfo, case["error"])


def test_sign_erases_the_secnonce_and_refuses_reuse():
    case = SV["valid_test_cases"][0]
    session = musig2.SessionContext(
        bytes.fromhex(SV["aggnonces"][0]),
        pick(SV["pubkeys"], case["key_indices"]),
        [],
        [],
        bytes.fromhex(SV["msgs"][0]),
    )
    secnonce = sv_secnonce()
    musig2.sign(secnonce, SV_SK, session)
    assert secnonce[:64] == bytes(64)
    with pytest.raises(ValueError, match="first secnonce value is out of range"):
        musig2.sign(secnonce, SV_SK, session)
    with pytest.raises(TypeError, match="bytearray"):
        musig2.sign(bytes(sv_secnonce()), SV_SK, session)


# --- tweaks -------------------------------------------------------------------------------

TWEAK = vectors("tweak")


def tweak_case(case):
    pubkeys = pick(TWEAK["pubkeys"], case["key_indices"])
    pubnonces = pick(TWEAK["pnonces"], case["nonce_indices"])
    tweaks = pick(TWEAK["tweaks"], case["tweak_indices"])
    return pubkeys, pubnonces, tweaks, bytes.fromhex(TWEAK["msg"])


@pytest.mark.parametrize("case", TWEAK["valid_test_cases"], ids=lambda c: c["comment"])
def test_tweaked_sign_and_verify(case):
    pubkeys, pubnonces, tweaks, msg = tweak_case(case)
    aggnonce = bytes.fromhex(TWEAK["aggnonce"])
    assert musig2.nonce_agg(pubnonces) == aggnonce
    session = musig2.SessionContext(aggnonce, pubkeys, tweaks, case["is_xonly"], msg)
    psig = musig2.sign(bytearray(bytes.fromhex(TWEAK["secnonce"])), h(TWEAK["sk"]), session)
    assert psig == bytes.fromhex(case["expected"])
    assert musig2.partial_sig_verify(
        psig, pubnonces, pubkeys, tweaks, case["is_xonly"], msg, case["signer_index"]
    )


@pytest.mark.parametrize("case", TWEAK["error_test_cases"], ids=lambda c: c["comment"])
def test_tweak_errors(case):
    pubkeys, _, tweaks, msg = tweak_case(case)
    session = musig2.SessionContext(
        bytes.fromhex(TWEAK["aggnonce"]), pubkeys, tweaks, case["is_xonly"], msg
    )
    with expect_error(case["error"]) as excinfo:
        musig2.sign(bytearray(bytes.fromhex(TWEAK["secnonce"])), h(TWEAK["sk"]), session)
    check_contribution(excinfo, case["error"])


# --- signature aggregation ----------------------------------------------------------------

SIG_AGG = vectors("sig_agg")


def sig_agg_session(case) -> musig2.SessionContext:
    pubnonces = pick(SIG_AGG["pnonces"], case["nonce_indices"])
    aggnonce = bytes.fromhex(case["aggnonce"])
    assert musig2.nonce_agg(pubnonces) == aggnonce
    return musig2.SessionContext(
        aggnonce,
        pick(SIG_AGG["pubkeys"], case["key_indices"]),
        pick(SIG_AGG["tweaks"], case["tweak_indices"]),
        case["is_xonly"],
        bytes.fromhex(SIG_AGG["msg"]),
    )


@pytest.mark.parametrize("case", SIG_AGG["valid_test_cases"])
def test_partial_sig_agg(case):
    session = sig_agg_session(case)
    sig = musig2.partial_sig_agg(pick(SIG_AGG["psigs"], case["psig_indices"]), session)
    assert sig == bytes.fromhex(case["expected"])
    tweaked_key = session.key_agg_context().xonly()
    assert coincurve.PublicKeyXOnly(tweaked_key).verify(sig, bytes.fromhex(SIG_AGG["msg"]))


@pytest.mark.parametrize("case", SIG_AGG["error_test_cases"], ids=lambda c: c["comment"])
def test_partial_sig_agg_errors(case):
    session = sig_agg_session(case)
    with expect_error(case["error"]) as excinfo:
        musig2.partial_sig_agg(pick(SIG_AGG["psigs"], case["psig_indices"]), session)
    check_contribution(excinfo, case["error"])


# --- a whole session ----------------------------------------------------------------------


def test_three_signers_with_a_taproot_tweak_make_a_valid_bip340_signature():
    secret_keys = [coincurve.PrivateKey() for _ in range(3)]
    pubkeys = musig2.key_sort([sk.public_key.format() for sk in secret_keys])
    by_key = {sk.public_key.format(): sk for sk in secret_keys}
    script_root = bytes(range(32))
    tree_ctx, output_key = musig2.aggregate_tree_key(pubkeys, script_root)
    msg = b"\x42" * 32

    nonces = {pk: musig2.nonce_gen(by_key[pk].secret, pk, None, msg, None) for pk in pubkeys}
    pubnonces = [nonces[pk][1] for pk in pubkeys]
    session = musig2.tree_session(musig2.nonce_agg(pubnonces), pubkeys, script_root, msg)
    assert session.key_agg_context() == tree_ctx

    psigs = [musig2.sign(nonces[pk][0], by_key[pk].secret, session) for pk in pubkeys]
    # Each secret nonce was erased by its use.
    assert all(nonces[pk][0][:64] == bytes(64) for pk in pubkeys)
    for i, psig in enumerate(psigs):
        assert musig2.partial_sig_verify_internal(psig, pubnonces[i], pubkeys[i], session)
        assert musig2.partial_sig_verify(
            psig, pubnonces, pubkeys, session.tweaks, session.is_xonly, msg, i
        )
        # The same share does not pass as another signer's.
        assert not musig2.partial_sig_verify_internal(
            psig, pubnonces[(i + 1) % 3], pubkeys[(i + 1) % 3], session
        )
    sig = musig2.partial_sig_agg(psigs, session)
    assert coincurve.PublicKeyXOnly(output_key).verify(sig, msg)
    # The untweaked aggregate is not the key that signed.
    assert not coincurve.PublicKeyXOnly(musig2.key_agg(pubkeys).xonly()).verify(sig, msg)
    # One wrong share spoils the aggregate.
    bad = [*psigs[:2], (int.from_bytes(psigs[2], "big") + 1).to_bytes(32, "big")]
    assert not coincurve.PublicKeyXOnly(output_key).verify(
        musig2.partial_sig_agg(bad, session), msg
    )


SCALARS = st.integers(min_value=1, max_value=musig2.N - 1)


@settings(max_examples=40, deadline=None)
@given(
    secret_keys=st.lists(SCALARS, min_size=1, max_size=5),
    duplicate_first=st.booleans(),
    tweaks=st.lists(st.tuples(SCALARS, st.booleans()), max_size=3),
    msg=st.binary(max_size=40),
)
def test_any_session_yields_a_signature_for_its_tweaked_key(
    secret_keys, duplicate_first, tweaks, msg
):
    """Whatever the keys (repeated ones too), tweaks (plain and x-only, mixed) and message,
    honest signers' shares verify and aggregate into a valid BIP-340 signature."""
    sks = [sk.to_bytes(32, "big") for sk in secret_keys]
    if duplicate_first:
        sks.append(sks[0])
    pubkeys = [coincurve.PrivateKey(sk).public_key.format() for sk in sks]
    tweak_bytes = [t.to_bytes(32, "big") for t, _ in tweaks]
    is_xonly = [x for _, x in tweaks]
    try:
        final = musig2.SessionContext(bytes(66), pubkeys, tweak_bytes, is_xonly, msg)
        final_key = final.key_agg_context().xonly()
    except ValueError:
        return  # a tweak cancelled the key: refused, as BIP-327 says
    nonces = [
        musig2.nonce_gen(sk, pk, final_key, msg, None) for sk, pk in zip(sks, pubkeys, strict=True)
    ]
    pubnonces = [pubnonce for _, pubnonce in nonces]
    session = musig2.SessionContext(
        musig2.nonce_agg(pubnonces), pubkeys, tweak_bytes, is_xonly, msg
    )
    psigs = [
        musig2.sign(secnonce, sk, session) for (secnonce, _), sk in zip(nonces, sks, strict=True)
    ]
    for i, psig in enumerate(psigs):
        assert musig2.partial_sig_verify(psig, pubnonces, pubkeys, tweak_bytes, is_xonly, msg, i)
    sig = musig2.partial_sig_agg(psigs, session)
    assert coincurve.PublicKeyXOnly(final_key).verify(sig, msg)


def test_tree_key_is_the_bip341_output_key_of_the_aggregate():
    keys = [coincurve.PrivateKey().public_key.format() for _ in range(2)]
    root = b"\x07" * 32
    _, output_key = musig2.aggregate_tree_key(list(reversed(keys)), root)
    internal = musig2.key_agg(musig2.key_sort(keys))
    tweak = coincurve.PrivateKey(musig2.taproot_tweak(internal, root)).public_key
    lifted = coincurve.PublicKey(b"\x02" + internal.xonly())
    assert coincurve.PublicKey.combine_keys([lifted, tweak]).format()[1:] == output_key
    with pytest.raises(ValueError, match="two cosigner keys"):
        musig2.aggregate_tree_key(keys[:1], root)


# --- deterministic signing ----------------------------------------------------------------

DET = vectors("det_sign")


def det_sign(case):
    return musig2.deterministic_sign(
        bytes.fromhex(DET["sk"]),
        bytes.fromhex(case["aggothernonce"]),
        pick(DET["pubkeys"], case["key_indices"]),
        [bytes.fromhex(t) for t in case["tweaks"]],
        case["is_xonly"],
        bytes.fromhex(DET["msgs"][case["msg_index"]]),
        h(case["rand"]),
    )


@pytest.mark.parametrize("case", DET["valid_test_cases"], ids=lambda c: c.get("comment", ""))
def test_deterministic_sign(case):
    pubnonce, psig = det_sign(case)
    assert [pubnonce, psig] == [bytes.fromhex(x) for x in case["expected"]]
    pubkeys = pick(DET["pubkeys"], case["key_indices"])
    session = musig2.SessionContext(
        musig2.nonce_agg([pubnonce, bytes.fromhex(case["aggothernonce"])]),
        pubkeys,
        [bytes.fromhex(t) for t in case["tweaks"]],
        case["is_xonly"],
        bytes.fromhex(DET["msgs"][case["msg_index"]]),
    )
    signer = pubkeys[case["signer_index"]]
    assert musig2.partial_sig_verify_internal(psig, pubnonce, signer, session)


@pytest.mark.parametrize("case", DET["error_test_cases"], ids=lambda c: c["comment"])
def test_deterministic_sign_errors(case):
    with expect_error(case["error"]) as excinfo:
        det_sign(case)
    check_contribution(excinfo, case["error"])


# --- the public surface -------------------------------------------------------------------


def test_the_public_names_and_signatures_are_the_agreed_ones():
    # The batch protocol codes against these; a rename or a reordered parameter breaks it.
    expected = {
        "key_sort": ["pubkeys"],
        "key_agg": ["pubkeys"],
        "nonce_gen": ["sk", "pk", "aggpk", "msg", "extra_in", "rand"],
        "nonce_agg": ["pubnonces"],
        "SessionContext": ["aggnonce", "pubkeys", "tweaks", "is_xonly", "msg"],
        "sign": ["secnonce", "sk", "session"],
        "partial_sig_verify": ["psig", "pubnonces", "pubkeys", "tweaks", "is_xonly", "msg", "i"],
        "partial_sig_verify_internal": ["psig", "pubnonce", "pk", "session"],
        "partial_sig_agg": ["psigs", "session"],
        "deterministic_sign": [
            "sk", "aggothernonce", "pubkeys", "tweaks", "is_xonly", "msg", "rand",
        ],
        "aggregate_tree_key": ["cosigner_pubkeys", "sweep_tapscript_root"],
        "tree_session": ["aggnonce", "cosigner_pubkeys", "sweep_tapscript_root", "msg"],
        "taproot_tweak": ["internal", "script_root"],
    }  # fmt: skip
    assert set(musig2.__all__) == {*expected, "KeyAggContext", "MusigError", "N"}
    for name, params in expected.items():
        assert list(inspect.signature(getattr(musig2, name)).parameters) == params, name
    assert issubclass(MusigError, ValueError)
    ctx = musig2.key_agg(pick(KEY_AGG["pubkeys"], [0, 1]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.q = bytes(33)  # type: ignore[misc]
