"""The reference wallet's pieces that need no relay: the events it builds and the checks it
makes before signing, against the protocol and against its own intent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import trio
from arkrelay_arkd import arktx, intentproof
from arkrelay_arkd.tapscript import csv_closure, default_vtxo_tree
from arkrelay_wallet.delivery import Backoff, Pacer, Verdict, judge
from embit.script import Script

from arkrelay_core.nostr import (
    Scheme,
    bip340,
    decrypt_dm,
    detect_scheme,
    encrypt_dm,
    first_tag_value,
    sign_event,
    tag_values,
    verify_event,
)
from arkrelay_core.protocol import (
    ArkServerInfo,
    Kind,
    payload_ref,
    session_id_for,
    sign_payload_digest,
)

from .wallet import OMIT, ChallengeRefused, Received, ScriptedWallet

SCHEMAS = Path(__file__).parent.parent / "data" / "schemas"
EXIT_DELAY = 512
#: The session of a plugin-type intent every wallet fixture has signed (sign_payload only).
PAYLOAD_SESSION = session_id_for("ab" * 32)


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text()))


INTENT_SCHEMA = _validator("31510_intent.schema.json")
RESPONSE_SCHEMA = _validator("31512_response.schema.json")


class Keys:
    def __init__(self) -> None:
        self.secret = bip340.generate_secret_key()
        self.pub = bip340.xonly_public_key(self.secret).hex()


@pytest.fixture
def gateway() -> Keys:
    return Keys()


@pytest.fixture
def wallet(gateway: Keys) -> ScriptedWallet:
    wallet = ScriptedWallet("ws://127.0.0.1:9", gateway.pub)
    wallet.careful.expect(PAYLOAD_SESSION, {"type": "x:vote", "params": {"choice": 1}})
    return wallet


def _challenge(
    signer: bytes,
    wallet: ScriptedWallet,
    content: dict[str, Any],
    scheme: Scheme = Scheme.NIP44,
    d_tag: str | None = None,
) -> Received:
    """A 31511 as the gateway (``signer``) sends it, opened as the wallet opens it."""
    intent_id = "ee" * 32
    d_value = d_tag or f"{content['session_id']}:{content['step_index']}"
    event = sign_event(
        signer,
        kind=Kind.CHALLENGE,
        content=encrypt_dm(signer, wallet.pubkey, json.dumps(content), scheme),
        tags=[["p", wallet.pubkey], ["d", d_value], ["e", intent_id]],
    )
    plaintext, used = decrypt_dm(wallet.secret, event.pubkey, event.content)
    return Received(event, json.loads(plaintext), used.value)


def _content(
    kind: str,
    digest: str,
    context: dict[str, Any],
    step: int = 1,
    session_id: str = PAYLOAD_SESSION,
) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "type": kind,
        "payload_to_sign": digest,
        "payload_ref": payload_ref(digest),
        "algo": "BIP340",
        "domain": "arkrelay/test/v1" if kind == "sign_payload" else "arkrelay/ark-tx/v1",
        "step_index": step,
        "step_total": 2,
        "expires_at": 1_900_000_000,
        "context": context,
    }


def _payload_content(payload: Any = None, digest: str | None = None) -> dict[str, Any]:
    payload = {"amount": 1000, "memo": "zürich"} if payload is None else payload
    return _content(
        "sign_payload",
        digest or sign_payload_digest("arkrelay/test/v1", payload),
        {"payload": payload},
    )


# -- events the wallet builds -------------------------------------------------------------


def test_intent_is_signed_addressed_and_schema_valid(wallet: ScriptedWallet, gateway: Keys):
    event = wallet.intent("ark:transfer", {"asset_id": "gBTC", "amount": 1000}, action_id="a-1")
    assert verify_event(event)
    assert event.kind == Kind.INTENT and event.pubkey == wallet.pubkey
    assert event.tags == [["p", gateway.pub], ["d", "a-1"]]
    content = json.loads(event.content)
    INTENT_SCHEMA.validate(content)
    assert content["action_id"] == "a-1"
    assert content["network"] == "regtest" and content["protocol_version"] == "1.0"
    assert content["expires_at"] > event.created_at


def test_intent_can_be_broken_on_purpose(wallet: ScriptedWallet):
    event = wallet.intent(
        "ark:transfer",
        {},
        action_id="a-2",
        d_tag=False,
        content_overrides={"network": "mainnet", "expires_at": OMIT, "extra": 1},
        created_at=1_000,
    )
    assert verify_event(event)
    assert first_tag_value(event, "d") is None and event.created_at == 1_000
    content = json.loads(event.content)
    assert "expires_at" not in content and content["network"] == "mainnet"
    with pytest.raises(jsonschema.ValidationError):
        INTENT_SCHEMA.validate(content)


def test_request_is_encrypted_to_the_gateway(wallet: ScriptedWallet, gateway: Keys):
    event = wallet.request("get_status", request_id="r-1", action_id="a-1")
    assert verify_event(event)
    assert event.kind == Kind.SERVICE_REQUEST
    assert event.tags == [["p", gateway.pub], ["d", "r-1"]]
    plaintext, scheme = decrypt_dm(gateway.secret, wallet.pubkey, event.content)
    assert scheme is Scheme.NIP44
    assert json.loads(plaintext) == {
        "action": "get_status",
        "request_id": "r-1",
        "action_id": "a-1",
    }

    wallet.nip04()
    old = wallet.request("get_info")
    plaintext, scheme = decrypt_dm(gateway.secret, wallet.pubkey, old.content)
    assert scheme is Scheme.NIP04
    assert json.loads(plaintext)["request_id"] == first_tag_value(old, "d")


# -- sign_payload -------------------------------------------------------------------------


def test_honest_sign_payload_is_answered(wallet: ScriptedWallet, gateway: Keys):
    challenge = _challenge(gateway.secret, wallet, _payload_content())
    response = wallet.build_answer(challenge)
    assert verify_event(response) and response.kind == Kind.SIGNING_RESPONSE
    assert first_tag_value(response, "d") == f"{challenge.content['session_id']}:1"
    assert tag_values(response, "e") == [challenge.event.id]
    assert tag_values(response, "p") == [gateway.pub]
    plaintext, scheme = decrypt_dm(gateway.secret, wallet.pubkey, response.content)
    assert scheme is Scheme.NIP44
    content = json.loads(plaintext)
    RESPONSE_SCHEMA.validate(content)
    assert content["pubkey"] == wallet.pubkey and content["algo"] == "BIP340"
    assert content["payload_ref"] == challenge.content["payload_ref"]
    assert bip340.schnorr_verify(
        bytes.fromhex(wallet.pubkey),
        bytes.fromhex(challenge.content["payload_to_sign"]),
        bytes.fromhex(content["signature"]),
    )


def test_answer_uses_the_scheme_of_the_challenge(wallet: ScriptedWallet, gateway: Keys):
    challenge = _challenge(gateway.secret, wallet, _payload_content(), scheme=Scheme.NIP04)
    assert detect_scheme(wallet.build_answer(challenge).content) is Scheme.NIP04


def test_overrides_break_the_response_on_purpose(wallet: ScriptedWallet, gateway: Keys):
    challenge = _challenge(gateway.secret, wallet, _payload_content())
    other = Keys()
    response = wallet.build_answer(
        challenge, secret_override=other.secret, payload_ref_override="sha256:00"
    )
    content = json.loads(decrypt_dm(gateway.secret, wallet.pubkey, response.content)[0])
    digest = bytes.fromhex(challenge.content["payload_to_sign"])
    signature = bytes.fromhex(content["signature"])
    assert content["pubkey"] == wallet.pubkey and content["payload_ref"] == "sha256:00"
    assert bip340.schnorr_verify(bytes.fromhex(other.pub), digest, signature)
    assert not bip340.schnorr_verify(bytes.fromhex(wallet.pubkey), digest, signature)

    forced = wallet.build_answer(challenge, signature="00" * 64, pubkey_override=other.pub)
    content = json.loads(decrypt_dm(gateway.secret, wallet.pubkey, forced.content)[0])
    assert content["signature"] == "00" * 64 and content["pubkey"] == other.pub


def test_sign_payload_whose_digest_does_not_match_is_refused(wallet, gateway):
    tampered = _payload_content(digest=sign_payload_digest("arkrelay/test/v1", {"amount": 1}))
    with pytest.raises(ChallengeRefused, match="not the digest"):
        wallet.build_answer(_challenge(gateway.secret, wallet, tampered))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"payload_ref": "sha256:" + "00" * 32}, "payload_ref"),
        ({"algo": "ECDSA"}, "malformed content"),
        ({"extra": 1}, "violates the 31511 schema"),
        ({"step_index": 3}, "exceeds step_total"),
        ({"context": {}}, "without context.payload"),
    ],
)
def test_malformed_challenges_are_refused(wallet, gateway, change, message):
    content = {**_payload_content(), **change}
    d_tag = f"{content['session_id']}:{content['step_index']}"
    with pytest.raises(ChallengeRefused, match=message):
        wallet.build_answer(_challenge(gateway.secret, wallet, content, d_tag=d_tag))


def test_challenge_from_another_key_or_with_a_wrong_d_tag_is_refused(wallet, gateway):
    impostor = Keys()
    with pytest.raises(ChallengeRefused, match="not the gateway"):
        wallet.build_answer(_challenge(impostor.secret, wallet, _payload_content()))
    with pytest.raises(ChallengeRefused, match="d tag"):
        wallet.build_answer(_challenge(gateway.secret, wallet, _payload_content(), d_tag="x:1"))


# -- sign_tx ------------------------------------------------------------------------------


class Ark:
    """An Ark server's keys and the ark txs the arkd plugin would build, without a server."""

    def __init__(self) -> None:
        self.signer = Keys()
        self.terms = ArkServerInfo(self.signer.pub, EXIT_DELAY, 330)

    def script(self, owner: str) -> bytes:
        return default_vtxo_tree(
            bytes.fromhex(owner), bytes.fromhex(self.signer.pub), EXIT_DELAY
        ).pk_script

    def offchain(
        self, owner: str, outputs: list[tuple[str, int]], amount: int = 10_000
    ) -> arktx.OffchainTxs:
        """Spend one ``amount`` VTXO of ``owner`` into ``outputs`` (owner, sats)."""
        signer = bytes.fromhex(self.signer.pub)
        vtxo = default_vtxo_tree(bytes.fromhex(owner), signer, EXIT_DELAY)
        spend = arktx.VtxoSpend("cd" * 32, 1, amount, vtxo, vtxo.leaves[1])
        return arktx.build_offchain_txs(
            [spend],
            [(self.script(who), sats) for who, sats in outputs],
            csv_closure(EXIT_DELAY, signer),
        )


@pytest.fixture
def ark(wallet: ScriptedWallet) -> Ark:
    ark = Ark()
    wallet.careful.terms = ark.terms
    return ark


BOB = Keys().pub


def _transfer(wallet: ScriptedWallet, amount: int = 1_000, fee: int = 10, to: str = BOB) -> str:
    """Sign a transfer intent; its session id."""
    intent = wallet.intent(
        "ark:transfer",
        {
            "asset_id": "gBTC",
            "amount": amount,
            "recipient_pubkey": to,
            "fee": {"asset_id": "gBTC", "amount": fee},
        },
    )
    return session_id_for(intent.id)


def _tx_content(psbt, role: str, session: str, digest: str | None = None) -> dict[str, Any]:
    digest = digest or arktx.tapscript_sighash(psbt, 0).hex()
    context = {
        "psbt": arktx.encode_psbt(psbt),
        "input_index": 0,
        "tx_role": role,
        "human": "send 1000 sat",
        "amount": 1_000,
        "asset_id": "gBTC",
    }
    return _content("sign_tx", digest, context, session_id=session)


def _honest(wallet: ScriptedWallet, ark: Ark, gateway: Keys) -> arktx.OffchainTxs:
    return ark.offchain(wallet.pubkey, [(BOB, 1_000), (gateway.pub, 10), (wallet.pubkey, 8_990)])


def test_honest_transfer_is_signed_in_both_rounds(wallet, gateway, ark):
    session = _transfer(wallet)
    txs = _honest(wallet, ark, gateway)
    for role, psbt in (("ark_tx", txs.ark_tx), ("checkpoint", txs.checkpoints[0])):
        challenge = _challenge(gateway.secret, wallet, _tx_content(psbt, role, session))
        response = wallet.build_answer(challenge)
        content = json.loads(decrypt_dm(gateway.secret, wallet.pubkey, response.content)[0])
        RESPONSE_SCHEMA.validate(content)
        assert content["type"] == "sign_tx"
        signature = bytes.fromhex(content["signature"])
        arktx.add_signature(psbt, 0, bytes.fromhex(wallet.pubkey), signature)
        assert arktx.verify_input_signatures(psbt, 0) == {bytes.fromhex(wallet.pubkey): True}
    assert wallet.refused == []


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        # The recipient swapped for another key.
        ([("5e" * 32, 1_000), ("gw", 10), ("me", 8_990)], "no output pays 1000 sats"),
        # The right recipient, a smaller amount, the rest skimmed to a third key.
        ([(BOB, 900), ("5e" * 32, 100), ("gw", 10), ("me", 8_990)], "no output pays 1000"),
        # Everything as asked, plus a higher fee than the intent allows.
        ([(BOB, 1_000), ("gw", 500), ("me", 8_500)], "takes 1500 sats from this wallet"),
    ],
)
def test_an_ark_tx_other_than_the_intent_is_refused(wallet, gateway, ark, outputs, message):
    session = _transfer(wallet)
    names = {"gw": gateway.pub, "me": wallet.pubkey}
    psbt = ark.offchain(wallet.pubkey, [(names.get(k, k), v) for k, v in outputs]).ark_tx
    challenge = _challenge(gateway.secret, wallet, _tx_content(psbt, "ark_tx", session))
    with pytest.raises(ChallengeRefused, match=message):
        wallet.build_answer(challenge)
    assert [why for _, why in wallet.refused] and message in wallet.refused[0][1]


def test_a_split_must_return_every_amount(wallet, gateway, ark):
    intent = wallet.intent(
        "vtxo:split",
        {
            "vtxo_id": "cd" * 32 + ":1",
            "asset_id": "gBTC",
            "split_amounts": [4_000, 5_990],
            "fee": {"asset_id": "gBTC", "amount": 10},
        },
    )
    session = session_id_for(intent.id)
    good = ark.offchain(
        wallet.pubkey, [(wallet.pubkey, 4_000), (wallet.pubkey, 5_990), (gateway.pub, 10)]
    )
    wallet.build_answer(
        _challenge(gateway.secret, wallet, _tx_content(good.ark_tx, "ark_tx", session))
    )
    bad = ark.offchain(wallet.pubkey, [(wallet.pubkey, 9_990), (gateway.pub, 10)])
    with pytest.raises(ChallengeRefused, match=r"split amounts \[4000, 5990\]"):
        wallet.build_answer(
            _challenge(gateway.secret, wallet, _tx_content(bad.ark_tx, "ark_tx", session))
        )


def test_a_checkpoint_of_no_approved_ark_tx_is_refused(wallet, gateway, ark):
    session = _transfer(wallet)
    other = _honest(wallet, ark, gateway).checkpoints[0]
    challenge = _challenge(gateway.secret, wallet, _tx_content(other, "checkpoint", session))
    with pytest.raises(ChallengeRefused, match="not spent by an ark tx this wallet approved"):
        wallet.build_answer(challenge)


def test_challenges_of_unknown_sessions_or_without_terms_are_refused(wallet, gateway):
    txs = Ark().offchain(wallet.pubkey, [(BOB, 10_000)])
    unknown = _tx_content(txs.ark_tx, "ark_tx", session_id_for("ef" * 32))
    with pytest.raises(ChallengeRefused, match="no intent this wallet signed"):
        wallet.build_answer(_challenge(gateway.secret, wallet, unknown))
    mine = _tx_content(txs.ark_tx, "ark_tx", _transfer(wallet))
    with pytest.raises(ChallengeRefused, match="terms are unknown"):
        wallet.build_answer(_challenge(gateway.secret, wallet, mine))


def test_sign_tx_with_a_sighash_of_another_tx_is_refused(wallet, gateway, ark):
    session = _transfer(wallet)
    honest = _honest(wallet, ark, gateway).ark_tx
    other = ark.offchain(wallet.pubkey, [(BOB, 1_000), (wallet.pubkey, 8_000)], amount=9_000)
    digest = arktx.tapscript_sighash(other.ark_tx, 0).hex()
    content = _tx_content(honest, "ark_tx", session, digest=digest)
    with pytest.raises(ChallengeRefused, match="is not the sighash"):
        wallet.build_answer(_challenge(gateway.secret, wallet, content))


def test_sign_tx_for_an_input_the_wallet_does_not_own_is_refused(wallet, gateway, ark):
    session = _transfer(wallet)
    foreign = ark.offchain(Keys().pub, [(BOB, 10_000)]).ark_tx
    content = _tx_content(foreign, "ark_tx", session)
    with pytest.raises(ChallengeRefused, match="not ours"):
        wallet.build_answer(_challenge(gateway.secret, wallet, content))


def test_sign_tx_with_a_bad_psbt_or_index_is_refused(wallet, gateway, ark):
    session = _transfer(wallet)
    content = _tx_content(_honest(wallet, ark, gateway).ark_tx, "ark_tx", session)
    with pytest.raises(ChallengeRefused, match="unusable PSBT"):
        bad = {**content, "context": {**content["context"], "psbt": "cHNidP8="}}
        wallet.build_answer(_challenge(gateway.secret, wallet, bad))
    with pytest.raises(ChallengeRefused, match="has 1 inputs"):
        bad = {**content, "context": {**content["context"], "input_index": 1}}
        wallet.build_answer(_challenge(gateway.secret, wallet, bad))


# -- the relay's OK and sending again ------------------------------------------------------


@pytest.mark.parametrize(
    ("accepted", "reason", "verdict"),
    [
        (True, "", Verdict.PUBLISHED),
        (True, "duplicate: already have this event", Verdict.PUBLISHED),
        # Some relays answer a known event OK false; it is held all the same.
        (False, "duplicate: already have this event", Verdict.PUBLISHED),
        (False, "rate-limited: too many events from this pubkey, slow down", Verdict.RETRY),
        (False, "error: could not store the event, try again later", Verdict.RETRY),
        (False, "invalid: bad signature", Verdict.REFUSED),
        (False, "blocked: not on the list", Verdict.REFUSED),
        (False, "pow: difficulty 20 is less than 30", Verdict.REFUSED),
        (False, "restricted: not allowed to write", Verdict.REFUSED),
        (False, "auth-required: authenticate with NIP-42 AUTH first", Verdict.REFUSED),
        (False, "mute: whatever a relay invents next", Verdict.REFUSED),
        (False, "rate limited, no prefix", Verdict.REFUSED),
        (False, "", Verdict.REFUSED),
    ],
)
def test_ok_answers_are_judged_by_their_prefix(accepted: bool, reason: str, verdict: Verdict):
    assert judge(accepted, reason) is verdict


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half():
    backoff = Backoff(initial=0.25, maximum=4.0)
    assert [backoff.ceiling(n) for n in range(1, 9)] == [0.25, 0.5, 1, 2, 4, 4, 4, 4]
    assert backoff.ceiling(10_000) == 4.0
    for failures in (1, 3, 6):
        ceiling = backoff.ceiling(failures)
        assert backoff.pause(failures, rand=lambda: 0.0) == ceiling / 2
        assert backoff.pause(failures, rand=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)
    pauses = {backoff.pause(4) for _ in range(50)}
    assert len(pauses) > 1 and all(1.0 <= p <= 2.0 for p in pauses)
    with pytest.raises(ValueError):
        backoff.ceiling(0)


async def test_pacer_lets_sends_out_one_interval_apart(autojump_clock):
    pacer = Pacer(0.2)
    start = trio.current_time()
    went: list[float] = []

    async def send() -> None:
        await pacer.turn()
        went.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(send)
    assert went == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    # Once the queue has drained, the next send goes at once.
    await trio.sleep(5)
    before = trio.current_time()
    await pacer.turn()
    assert trio.current_time() == before


# -- ownership proofs (GetPendingTx recovery, tx_role intent_proof) ------------------------


def _proof(ark: Ark, owners: list[str], message: str | None = None) -> Any:
    """An unsigned get-pending-tx ownership proof of one 10,000-sat VTXO per owner, as
    the arkd plugin's build_ownership_proof makes it."""
    signer = bytes.fromhex(ark.signer.pub)
    inputs = []
    for n, owner in enumerate(owners, start=1):
        tree = default_vtxo_tree(bytes.fromhex(owner), signer, EXIT_DELAY)
        inputs.append(intentproof.ProofInput(f"{n:02x}" * 32, 1, 10_000, tree, tree.leaves[1]))
    message = message or intentproof.get_pending_tx_message(1_900_000_000)
    return intentproof.build_proof(message, inputs)


def _proof_content(psbt, session: str, index: int = 1, digest: str | None = None) -> dict:
    message = psbt.unknown[intentproof.GLOBAL_MESSAGE_KEY].decode()
    digest = digest or intentproof.proof_sighashes(psbt, message)[index].sighash.hex()
    context = {
        "psbt": arktx.encode_psbt(psbt),
        "input_index": index,
        "tx_role": "intent_proof",
        "human": "prove ownership to recover ark tx x; moves no funds",
        "amount": 0,
        "asset_id": "",
    }
    content = _content("sign_tx", digest, context, step=3, session_id=session)
    return {**content, "step_total": 4}


def _approved_transfer(wallet, gateway, ark) -> str:
    """A transfer session whose ark tx the wallet has signed (its first round)."""
    session = _transfer(wallet)
    ark_tx = _honest(wallet, ark, gateway).ark_tx
    wallet.build_answer(_challenge(gateway.secret, wallet, _tx_content(ark_tx, "ark_tx", session)))
    return session


def test_an_honest_ownership_proof_is_signed(wallet, gateway, ark):
    session = _approved_transfer(wallet, gateway, ark)
    psbt = _proof(ark, [wallet.pubkey])
    for index in (0, 1):
        challenge = _challenge(gateway.secret, wallet, _proof_content(psbt, session, index))
        response = wallet.build_answer(challenge)
        content = json.loads(decrypt_dm(gateway.secret, wallet.pubkey, response.content)[0])
        RESPONSE_SCHEMA.validate(content)
        message = psbt.unknown[intentproof.GLOBAL_MESSAGE_KEY].decode()
        digest = intentproof.proof_sighashes(psbt, message)[index].sighash
        assert bip340.schnorr_verify(
            bytes.fromhex(wallet.pubkey), digest, bytes.fromhex(content["signature"])
        )
    assert wallet.refused == []


def test_a_spend_disguised_as_an_ownership_proof_is_refused(wallet, gateway, ark):
    """The gateway sends the wallet's checkpoint (a real spend of its VTXO) and its
    sighash under tx_role intent_proof: signing it would release the VTXO."""
    session = _approved_transfer(wallet, gateway, ark)
    spend = ark.offchain(wallet.pubkey, [(gateway.pub, 10_000)]).checkpoints[0]
    content = _tx_content(spend, "intent_proof", session)
    with pytest.raises(ChallengeRefused, match="proof"):
        wallet.build_answer(_challenge(gateway.secret, wallet, content))
    # A true proof PSBT with the spend's sighash as payload_to_sign.
    disguised = _proof_content(
        _proof(ark, [wallet.pubkey]), session, digest=arktx.tapscript_sighash(spend, 0).hex()
    )
    with pytest.raises(ChallengeRefused, match="is not the sighash"):
        wallet.build_answer(_challenge(gateway.secret, wallet, disguised))
    assert len(wallet.refused) == 2, wallet.refused
    assert "the proof carries no message" in wallet.refused[0][1]


def test_an_ownership_proof_that_pays_or_proves_others_is_refused(wallet, gateway, ark):
    session = _approved_transfer(wallet, gateway, ark)
    paying = _proof(ark, [wallet.pubkey])
    paying.outputs[0].value = 5_000
    paying.outputs[0].script_pubkey = Script(ark.script(gateway.pub))
    with pytest.raises(ChallengeRefused, match="the proof pays 5000 sats"):
        wallet.build_answer(_challenge(gateway.secret, wallet, _proof_content(paying, session)))
    # Our VTXO and someone else's: signing ours would vouch for theirs.
    both = _proof(ark, [wallet.pubkey, Keys().pub])
    with pytest.raises(ChallengeRefused, match="proof input 2 is not a VTXO of this wallet"):
        wallet.build_answer(_challenge(gateway.secret, wallet, _proof_content(both, session)))
    other = _proof(ark, [wallet.pubkey], message=json.dumps({"type": "register"}))
    with pytest.raises(ChallengeRefused, match="not a get-pending-tx request"):
        wallet.build_answer(_challenge(gateway.secret, wallet, _proof_content(other, session)))


def test_an_ownership_proof_for_a_session_never_signed_is_refused(wallet, gateway, ark):
    session = _transfer(wallet)
    content = _proof_content(_proof(ark, [wallet.pubkey]), session)
    with pytest.raises(ChallengeRefused, match="never signed"):
        wallet.build_answer(_challenge(gateway.secret, wallet, content))


# ---------------------------------------------------------------------------- the Ark server's view


def test_the_server_view_comparison_names_each_disagreement() -> None:
    from arkrelay_wallet.arkserver import ServerVtxo, compare

    def server(vtxo_id: str, amount: int, **flags: bool) -> ServerVtxo:
        return ServerVtxo(
            vtxo_id,
            amount,
            "5120" + "11" * 32,
            0,
            flags.get("spent", False),
            flags.get("swept", False),
            False,
        )

    def entry(vtxo_id: str, amount: int, status: str = "spendable") -> dict[str, Any]:
        return {"vtxo_id": vtxo_id, "asset_id": "aa" * 32, "amount": amount, "status": status}

    state = {"vtxos": [entry("a:0", 1_000), entry("b:0", 2_000), entry("c:0", 5, "spent")]}
    assert compare([server("a:0", 1_000), server("b:0", 2_000)], state) == []
    assert compare(
        [server("a:0", 999), server("d:1", 7), server("b:0", 2_000, spent=True)], state
    ) == [
        "a:0: 1000 sats at the gateway, 999 at the Ark server",
        "b:0: the gateway lists it, the Ark server does not",
        "d:1: the Ark server lists it, the gateway does not",
    ]
