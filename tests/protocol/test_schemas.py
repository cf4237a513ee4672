"""What we emit for 31510/31511/31512 validates against the published JSON Schemas,
and what those schemas allow, we accept."""

import json
from pathlib import Path

import jsonschema
import msgspec
import pytest

from arkrelay_core.protocol import (
    Challenge,
    Intent,
    SigningResponse,
    SignTxContext,
    canonical_json,
    decode_content,
    payload_ref,
    sign_payload_digest,
)

SCHEMAS = Path(__file__).parent.parent / "data" / "schemas"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


INTENT = _validator("31510_intent.schema.json")
CHALLENGE = _validator("31511_challenge.schema.json")
RESPONSE = _validator("31512_response.schema.json")


def _emit(struct: msgspec.Struct) -> dict:
    return json.loads(msgspec.json.encode(struct))


@pytest.mark.parametrize(
    "intent",
    [
        Intent(
            action_id="7d0b3a1e-4c54-4d6c-9c2d-0e8f4b1a2c3d",
            type="ark:transfer",
            params={"asset_id": "gBTC", "amount": 1000, "recipient_pubkey": "ab" * 32},
            expires_at=1_900_000_000,
        ),
        Intent(
            action_id="a1",
            type="lightning:land",
            params={"asset_id": "gBTC", "amount": 5, "lightning_invoice": "lnbcrt1..."},
            expires_at=0,
            network="regtest",
            protocol_version="1",
            recipient_pubkey="cd" * 32,
            solver_id="dex-1",
            deadline=5,
            min_out_amount=3,
        ),
    ],
)
def test_emitted_intent_validates(intent):
    INTENT.validate(_emit(intent))


def test_intent_omits_unset_optional_fields():
    doc = _emit(Intent(action_id="x", type="vtxo:split", params={}, expires_at=1))
    assert set(doc) == {"action_id", "type", "params", "expires_at"}


def _sign_tx_challenge() -> Challenge:
    digest = "11" * 32
    return Challenge(
        session_id="sess_" + "ab" * 12,
        type="sign_tx",
        payload_to_sign=digest,
        payload_ref=payload_ref(digest),
        algo="BIP340",
        domain="arkrelay/ark-tx/v1",
        step_index=1,
        step_total=4,
        expires_at=1_900_000_000,
        context=msgspec.to_builtins(
            SignTxContext(
                psbt="cHNidP8BAA==",
                input_index=0,
                tx_role="ark_tx",
                human="send 1000 gBTC to npub1...",
                amount=1000,
                asset_id="ab" * 32,
                recipient_pubkey="cd" * 32,
                ticker="gBTC",
            )
        ),
    )


def test_emitted_challenges_validate():
    CHALLENGE.validate(_emit(_sign_tx_challenge()))
    payload = {"amount": 5, "pair": "gBTC/USDT"}
    digest = sign_payload_digest("arkrelay/amm/v1", payload)
    CHALLENGE.validate(
        _emit(
            Challenge(
                session_id="sess_" + "cd" * 12,
                type="sign_payload",
                payload_to_sign=digest,
                payload_ref=payload_ref(digest),
                algo="BIP340",
                domain="arkrelay/amm/v1",
                step_index=1,
                step_total=1,
                expires_at=5,
                context={"payload": payload},
            )
        )
    )


def test_emitted_response_validates():
    RESPONSE.validate(
        _emit(
            SigningResponse(
                session_id="sess_" + "ab" * 12,
                type="sign_tx",
                signature="ee" * 64,
                payload_ref="sha256:" + "11" * 32,
                pubkey="cd" * 32,
            )
        )
    )
    # The minimal response the schema allows decodes too (algo defaults to BIP340).
    minimal = {"session_id": "s", "type": "sign_payload", "signature": "00" * 64}
    RESPONSE.validate(minimal)
    assert decode_content(json.dumps(minimal), SigningResponse).algo == "BIP340"


def test_challenge_field_set_is_the_schema_property_set():
    # The schema forbids additional properties, and PROTOCOL.md lists every field as sent.
    schema = json.loads((SCHEMAS / "31511_challenge.schema.json").read_text())
    assert set(_emit(_sign_tx_challenge())) == set(schema["properties"])


def test_sign_payload_digest_is_domain_separated_canonical_json():
    import hashlib

    payload = {"b": [1, {"z": 1, "a": "é"}], "a": 2}
    expected = hashlib.sha256(
        b"arkrelay/amm/v1\n" + '{"a":2,"b":[1,{"a":"é","z":1}]}'.encode()
    ).hexdigest()
    assert sign_payload_digest("arkrelay/amm/v1", payload) == expected
    assert canonical_json(payload) == '{"a":2,"b":[1,{"a":"é","z":1}]}'.encode()
    # Another domain gives another digest: a signature can't be replayed across domains.
    assert sign_payload_digest("arkrelay/other/v1", payload) != expected
